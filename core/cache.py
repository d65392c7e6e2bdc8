"""The cache folder: converted models, key statistics, hypernetwork checkpoints, judgements."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "RIPPLEBENCH_CACHE"


def default_cache_dir() -> Path:
    """The cache folder: $RIPPLEBENCH_CACHE, else ~/.cache/ripplebench (read on every call)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "ripplebench")
