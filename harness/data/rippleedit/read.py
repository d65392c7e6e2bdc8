"""Prepared RippleEdit data: where it lives and how a split is read."""

from __future__ import annotations

import os
from pathlib import Path

from ripplebench.core.cache import default_cache_dir
from ripplebench.core.io import read_jsonl
from ripplebench.harness.data.rippleedit.download import OFFICIAL_PAGE
from ripplebench.harness.data.rippleedit.records import RippleEdit
from ripplebench.harness.data.rippleedit.splits import SPLITS, split_path

DATA_DIR_ENV = "RIPPLEBENCH_RIPPLEEDIT_DIR"
MANIFEST = "manifest.json"  # written next to the splits by `prepare`


def default_data_dir() -> Path:
    """Where prepared data lives: $RIPPLEBENCH_RIPPLEEDIT_DIR, else <ripplebench cache>/rippleedit."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    return default_cache_dir() / "rippleedit"


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """An explicit folder, else the default one."""
    return Path(data_dir).expanduser() if data_dir else default_data_dir()


def missing_data_message(folder: Path, split: str) -> str:
    """What to do when a split is not prepared: the commands and settings that provide it."""
    return (
        f"No prepared RippleEdit data: {split_path(folder, split)} does not exist. Prepare it with "
        f"`ripplebench data rippleedit --data-dir {folder}` (downloads the official files) or, offline, "
        f"`ripplebench data rippleedit --source DIR --data-dir {folder}` with DIR holding popular.json, "
        f"random.json and recent.json from {OFFICIAL_PAGE}. To use data prepared elsewhere, set "
        f'{DATA_DIR_ENV}=FOLDER or pass lm_eval --metadata \'{{"data_dir": "FOLDER"}}\'.'
    )


def load_split(split: str, data_dir: str | Path | None = None) -> list[RippleEdit]:
    """The prepared edits of one split."""
    if split not in SPLITS:
        raise ValueError(f"Unknown RippleEdit split '{split}'. Valid: {', '.join(SPLITS)}.")
    folder = resolve_data_dir(data_dir)
    path = split_path(folder, split)
    if not path.is_file():
        raise FileNotFoundError(missing_data_message(folder, split))
    return [RippleEdit.from_record(record) for record in read_jsonl(path)]
