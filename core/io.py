"""File IO used everywhere: UTF-8 text and JSON lines, gzipped when the name ends in `.gz`, and
atomic writes (the target is replaced only once the new content is complete).

Gzip is written with a fixed timestamp, so the same content always gives the same bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterable, Iterator


def open_text(path: str | Path, mode: str = "r") -> IO[str]:
    """Open a UTF-8 text file for reading ("r") or writing ("w"), gzipped when it ends in .gz."""
    path = Path(path)
    if not path.name.endswith(".gz"):
        return path.open(mode, encoding="utf-8")
    if mode == "r":
        return gzip.open(path, "rt", encoding="utf-8")
    return io.TextIOWrapper(gzip.GzipFile(path, mode + "b", compresslevel=6, mtime=0), encoding="utf-8")


def read_text(path: str | Path) -> str:
    """A text file's content (gunzipped when it ends in .gz)."""
    with open_text(path) as handle:
        return handle.read()


def iter_jsonl(path: str | Path) -> Iterator[tuple[str, Any]]:
    """(`file:line`, record) for each non-blank line of a JSON-lines file (optionally .gz); a line
    that is not JSON raises ValueError naming the file and line."""
    path = Path(path)
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{where}: not valid JSON ({error.msg} at column {error.colno}); each line must be one JSON object."
                ) from None


def read_jsonl(path: str | Path) -> list[Any]:
    """Every record of a JSON-lines file (optionally .gz), naming the file and line of a bad one."""
    return [record for _, record in iter_jsonl(path)]


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; it replaces `path` when the block ends without
    an error and is removed otherwise. The file gets open()'s usual permissions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """A temporary folder beside `path` to fill; it is renamed to `path` when the block ends
    without an error and removed otherwise. If another process created `path` meanwhile, its
    folder is kept and ours dropped."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-partial-", dir=path.parent))
    try:
        yield staging
        staging.rename(path)
    except OSError:
        if not path.is_dir():  # else another process finished it first
            raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def write_atomically(path: str | Path, lines: Iterable[str]) -> None:
    """Replace `path` with `lines` only once they are completely written (gzipped for .gz)."""
    with atomic_path(path) as temporary:
        with temporary.open("wb") as raw:
            packed = (
                gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) if Path(path).name.endswith(".gz") else None
            )
            with io.TextIOWrapper(packed or raw, encoding="utf-8") as out:
                out.writelines(lines)  # closing it closes the gzip stream too


def write_jsonl(path: str | Path, records: Iterable[Any]) -> None:
    """Write records as JSON lines, atomically (gzipped for .gz)."""
    write_atomically(path, (json.dumps(record, ensure_ascii=False, default=str) + "\n" for record in records))


def write_json(path: str | Path, data: Any) -> None:
    """Write one indented JSON document, atomically."""
    write_atomically(path, [json.dumps(data, indent=2, ensure_ascii=False, default=str)])


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
