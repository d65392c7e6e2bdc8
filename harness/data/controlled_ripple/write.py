"""Controlled RippleEdit's split files: the same instances always give the same bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ripplebench.core.io import open_text
from ripplebench.harness.data.controlled_ripple.splits import split_path


def serialize(instances: list[dict[str, Any]]) -> str:
    """JSON lines, UTF-8, compact, keys in generation order: the same instances give the same bytes."""
    return "".join(json.dumps(instance, ensure_ascii=False, separators=(",", ":")) + "\n" for instance in instances)


def write_splits(splits: dict[str, list[dict[str, Any]]], data_dir: Path) -> list[Path]:
    """Write each split to <data_dir>/<split>.jsonl."""
    paths = []
    for split, instances in splits.items():
        path = split_path(data_dir, split)
        with open_text(path, "w") as handle:
            handle.write(serialize(instances))
        paths.append(path)
    return paths
