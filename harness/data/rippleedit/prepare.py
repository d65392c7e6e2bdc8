"""Prepare RippleEdit: read the official files, label every query, write the paper's splits."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from ripplebench.core.io import write_jsonl
from ripplebench.harness.data.rippleedit.download import fetch_sources
from ripplebench.harness.data.rippleedit.parse import SUBSETS, read_subset
from ripplebench.harness.data.rippleedit.read import MANIFEST, resolve_data_dir
from ripplebench.harness.data.rippleedit.splits import split_edits, split_path

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def prepare(
    source: str,
    data_dir: str | Path | None = None,
    validation_size: int = 500,
    test_size: int = 500,
    seed: int = 0,
) -> dict[str, Any]:
    """Read the official files, split them, and write train/validation/test JSON lines.

    Returns the manifest that is also written next to the splits (`MANIFEST`).
    """
    out = resolve_data_dir(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        edits = [
            edit for subset, path in fetch_sources(source, Path(scratch)).items() for edit in read_subset(path, subset)
        ]
    dropped = sum(edit.dropped for edit in edits)
    log.info("RippleEdit: dropped %d queries that have no non-blank answer.", dropped)
    splits = split_edits(edits, validation_size, test_size, seed)
    for split, members in splits.items():
        write_jsonl(split_path(out, split), (edit.to_record() for edit in members))
    manifest = {
        "format_version": FORMAT_VERSION,
        "source": source,
        "seed": seed,
        "edits": {subset: sum(edit.subset == subset for edit in edits) for subset in SUBSETS},
        "split_sizes": {split: len(items) for split, items in splits.items()},
        "dropped_queries": dropped,
        "edits_without_atomic_fact": sum(not edit.atomic_facts for edit in edits),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
