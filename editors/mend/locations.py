"""Where hypernetwork checkpoints live: `$RIPPLEBENCH_CACHE/hypernets/<config name>/<key>/`.

Training writes there unless the config sets `out_dir`, and editor presets look there, so a
checkpoint trained in one directory is found from any other. `<key>` is a short hash of what a
checkpoint is (the fields in KEY_FIELDS: the model, the edited weights, the network's shape and
its losses): a checkpoint for another model or layer set lands in, and is looked for in, another
folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

import torch

from ripplebench.core.cache import default_cache_dir

KEY_FIELDS = (
    "model",
    "layers",
    "weights",
    "rank",
    "n_hidden",
    "shared",
    "inner_loss",
    "outer_loss",
    "turns",
    "edits_per_turn",
    "back_depth",
)
BEST = "best.pt"


def model_identity(spec: str) -> str:
    """A model spec as the key sees it: local paths absolute, aliases and hub ids as given."""
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def key_values(config: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a training config that identify its checkpoints."""
    values = {field: config.get(field) for field in KEY_FIELDS}
    values["model"] = model_identity(str(values["model"]))
    return values


def config_key(config: Mapping[str, Any]) -> str:
    """A 12-character hash of `key_values(config)`."""
    text = json.dumps(key_values(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def hypernet_dir(name: str, config: Mapping[str, Any]) -> Path:
    """The default out_dir of training config `name` with these values."""
    return default_cache_dir() / "hypernets" / name / config_key(config)


def recorded_config(path: Path) -> dict[str, Any]:
    """The training config a checkpoint records (memory-mapped: the weights are not read)."""
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)["train_config"]


def key_differences(trained: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """'field: trained X, expected Y' for every key field in which two configs differ."""
    a, b = key_values(trained), key_values(expected)
    return [f"{field}: trained {a[field]}, expected {b[field]}" for field in KEY_FIELDS if a[field] != b[field]]


def find_checkpoint(config: Mapping[str, Any]) -> Path | None:
    """The best.pt in the config's out_dir, if training has written one."""
    path = Path(config["out_dir"]) / BEST
    return path if path.is_file() else None
