"""The official RippleEdit files: from a local folder, or downloaded from the RippleEdits repository."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from pathlib import Path

from ripplebench.harness.data.rippleedit.parse import SUBSETS

log = logging.getLogger(__name__)

OFFICIAL_URL = "https://raw.githubusercontent.com/edenbiran/RippleEdits/main/data/benchmark"
OFFICIAL_PAGE = "https://github.com/edenbiran/RippleEdits/tree/main/data/benchmark"


def _download(url: str, target: Path) -> None:
    """Fetch one file with a progress bar; refuse a Git LFS pointer in place of the data."""
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:
        size = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=size, unit="B", unit_scale=True, desc=target.name) as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
    if target.read_bytes()[:64].startswith(b"version https://git-lfs"):
        raise ValueError(f"{url} returned a Git LFS pointer, not the data.")


def _offline_help(folder: str) -> str:
    names = ", ".join(f"{subset}.json" for subset in SUBSETS)
    return (
        f"Download {names} from {OFFICIAL_PAGE} on a machine with internet, place them in one "
        f"folder (e.g. {folder}) and run `ripplebench data rippleedit --source {folder}`."
    )


def fetch_sources(source: str, scratch: Path) -> dict[str, Path]:
    """The three official files from a local folder, or downloaded from a base URL into `scratch`."""
    if "://" not in source:
        folder = Path(source).expanduser()
        missing = [f"{subset}.json" for subset in SUBSETS if not (folder / f"{subset}.json").is_file()]
        if missing:
            raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}. {_offline_help(str(folder))}")
        return {subset: folder / f"{subset}.json" for subset in SUBSETS}
    paths = {}
    for subset in SUBSETS:
        url = f"{source.rstrip('/')}/{subset}.json"
        paths[subset] = scratch / f"{subset}.json"
        try:
            log.info("Downloading %s", url)
            _download(url, paths[subset])
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise ConnectionError(f"Could not download {url} ({error}). {_offline_help('~/rippleedits')}") from None
    return paths
