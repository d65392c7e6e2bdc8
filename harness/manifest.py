"""The manifest of a run: what its numbers depend on, recorded in every results file.

`EditingLM.get_model_info` adds it under `config.ripplebench.manifest`: the ripplebench version
and, when it runs from (or was installed from) a git checkout, that checkout's commit; the
weights' identity; a hash of the documents each task asked about (the journal key's); the identity of the statistics files editors used (the
`mom2_*` entries locate-then-edit editors record in their edit statistics); and the judge model
with a hash of its prompt template, when a judge is configured. Results files written before the
manifest existed simply lack it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path
from typing import Any, Mapping, Sequence

PACKAGE = "ripplebench"
CHECKOUT = Path(__file__).resolve().parent.parent  # the repository root when run from a checkout
STATISTICS_PREFIX = "mom2_"  # the edit statistics that name precomputed statistics (editors/locate/stats.py)
PER_RUN_STATISTICS = ("mom2_computed_layers",)  # what this run computed, not which statistics


def package_version() -> str | None:
    """The installed ripplebench version, or None when it is not installed."""
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return None


def source_checkout() -> Path | None:
    """The folder ripplebench runs from when it is a git checkout, else the folder `pip install`
    installed it from (`direct_url.json`, e.g. the checkout `make install` reinstalls from)."""
    if (CHECKOUT / ".git").exists():
        return CHECKOUT
    try:
        record = json.loads(distribution(PACKAGE).read_text("direct_url.json") or "{}")
    except (PackageNotFoundError, ValueError):
        return None
    url = str(record.get("url") or "")
    return Path(url.removeprefix("file://")) if url.startswith("file://") else None


def git_commit(root: Path | None = None) -> str | None:
    """The commit checked out in `root` (default: `source_checkout()`), or None where there is
    no checkout or no git."""
    root = root or source_checkout()
    if root is None or not (root / ".git").exists():
        return None
    try:
        found = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None


def statistics_identity(edit_stats: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Each statistics entry (`mom2_*`) the edit groups recorded, with its distinct values."""
    found: dict[str, list[Any]] = {}
    for record in edit_stats:
        for key, value in record.items():
            if key.startswith(STATISTICS_PREFIX) and key not in PER_RUN_STATISTICS:
                for item in value if isinstance(value, list) else [value]:
                    if item not in found.setdefault(key, []):
                        found[key].append(item)
    return found


def judge_identity(judge_args: Mapping[str, Any]) -> dict[str, str | None] | None:
    """The judge's model and a hash of its prompt template, from `judge_<setting>` model args
    over RIPPLEBENCH_JUDGE_* variables; None when no judge is configured."""
    from ripplebench.harness.judge import JudgeSettings

    settings = JudgeSettings.resolve(judge_args)
    if settings is None:
        return None
    template = Path(settings.template)
    try:
        template_sha = hashlib.sha256(template.read_bytes()).hexdigest()
    except OSError:
        template_sha = None  # the judge itself reports an unreadable template
    return {"model": settings.model, "template": template.name, "template_sha256": template_sha}


def build_manifest(
    weights: Mapping[str, Any],
    task_data: Mapping[str, str],
    edit_stats: Sequence[Mapping[str, Any]],
    judge_args: Mapping[str, Any],
) -> dict[str, Any]:
    """The manifest of a run of the `editing` model (see the module docstring)."""
    return {
        "ripplebench_version": package_version(),
        "git_commit": git_commit(),
        "weights": dict(weights),
        "task_data": dict(task_data),
        "statistics": statistics_identity(edit_stats),
        "judge": judge_identity(judge_args),
    }
