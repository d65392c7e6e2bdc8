"""Training configs (`TrainConfig`) and the bundled presets in `editors/presets/train/`.

A config is a YAML file of TrainConfig fields, or the name of a bundled preset. Besides the
fields, a file may hold `description`, `measured_cpu_time` (how long its training took, and
where) and `extends: OTHER` (start from the fields of bundled preset OTHER; its description and
time are not inherited). An empty `out_dir` is the config's folder in the cache
(`locations.hypernet_dir`); empty data files are the committed Controlled RippleEdit splits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from ripplebench.core.presets import find_preset
from ripplebench.core.settings import build_dataclass

from .locations import hypernet_dir
from .losses import INNER_LOSSES, OUTER_LOSSES

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets" / "train"
METADATA = ("description", "measured_cpu_time")


@dataclass
class TrainConfig:
    model: str = "smollm2-135m"
    prompt_format: str = "auto"  # as in evaluation: auto, chat, qa, raw
    train_file: str = ""  # "": the committed Controlled RippleEdit training split
    validation_file: str = ""  # "": the committed validation split
    locality: str = "specificity"  # or a JSON-lines file of {question, answer} (e.g. NQ)
    locality_batch: int = 2
    layers: str = "19-22"  # decoder layers, 0-based inclusive
    weights: str = "gate_proj,up_proj,down_proj"  # MLP matrices edited in each layer
    inner_loss: str = "clm"  # clm (PropMEND) | sft (MEND)
    outer_loss: str = "propagation"  # propagation (PropMEND) | paraphrase (MEND)
    c_edit: float = 0.1
    lr: float = 1e-6  # hypernetwork weights phi
    lr_alpha: float = 1e-4  # step sizes alpha
    edit_lr: float = 1e-4  # initial alpha
    rank: int = 1920
    n_hidden: int = 1
    shared: bool = False
    batch_size: int = 10  # sequences per optimizer step (gradient accumulation)
    grad_clip: float = 100.0
    val_every: int = 100
    val_instances: int = 0  # 0: the whole validation file
    val_generate: bool = True
    patience: int = 2000
    max_steps: int = 1_000_000
    max_minutes: float = 0.0  # 0: no time budget
    turns: int = 1  # RLEdit: turns per sequence
    edits_per_turn: int = 1
    back_depth: int = 1
    decay: float = 1.0
    reg_coef: float = 0.0
    seed: int = 0
    max_length: int = 256
    device: str = "cpu"
    out_dir: str = ""  # "": $RIPPLEBENCH_CACHE/hypernets/<config name>/<key>/

    def check(self) -> None:
        if self.inner_loss not in INNER_LOSSES:
            raise ValueError(f"Unknown inner_loss '{self.inner_loss}'. Valid: {', '.join(INNER_LOSSES)}.")
        if self.outer_loss not in OUTER_LOSSES:
            raise ValueError(f"Unknown outer_loss '{self.outer_loss}'. Valid: {', '.join(OUTER_LOSSES)}.")
        for key in ("turns", "edits_per_turn", "back_depth", "batch_size", "val_every", "locality_batch"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be at least 1, not {getattr(self, key)}.")
        if not self.out_dir:
            raise ValueError("out_dir is empty; give a folder, or load the config with load_train_config.")


@dataclass(frozen=True)
class TrainPreset:
    """A loaded training config with its name, the command that runs it and its measured cost."""

    spec: str  # as given: a bundled preset name or a YAML path
    name: str  # the file's stem: the cache folder's name
    config: TrainConfig
    measured_cpu_time: str  # "" when not measured

    @property
    def command(self) -> str:
        return f"ripplebench train-editor {self.spec}"

    @property
    def cost(self) -> str:
        return f"measured CPU time: {self.measured_cpu_time}" if self.measured_cpu_time else "CPU time not measured"


def _config_path(spec: str) -> Path:
    return find_preset(spec, PRESETS_DIR, "Training config")


def _read_values(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's values, on top of the fields of the preset it `extends`."""
    if path in seen:
        raise ValueError(f"Training config {path}: `extends` loops ({' -> '.join(p.stem for p in (*seen, path))}).")
    values = dict(yaml.safe_load(path.read_text()) or {})
    base = values.pop("extends", None)
    if base is None:
        return values
    inherited = {k: v for k, v in _read_values(_config_path(str(base)), (*seen, path)).items() if k not in METADATA}
    return {**inherited, **values}


def read_train_preset(spec: str, overrides: Mapping[str, Any] | None = None) -> TrainPreset:
    """A training config from a YAML file or a bundled preset name, with overrides applied."""
    path = _config_path(spec)
    values = _read_values(path)
    metadata = {key: values.pop(key, "") for key in METADATA}
    values.update(overrides or {})
    # build_dataclass converts numeric strings (YAML reads 1e-6, without a dot, as one).
    config: TrainConfig = build_dataclass(TrainConfig, values, f"training config {path}")  # type: ignore[assignment]
    if not config.out_dir:
        config.out_dir = str(hypernet_dir(path.stem, dataclasses.asdict(config)))
    config.check()
    return TrainPreset(spec, path.stem, config, str(metadata["measured_cpu_time"] or ""))


def load_train_config(spec: str, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """The TrainConfig of `read_train_preset`."""
    return read_train_preset(spec, overrides).config
