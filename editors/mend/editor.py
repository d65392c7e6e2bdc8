"""The editors `mend`, `propmend` and `rledit`: apply a trained hypernetwork's weight update.

All three run the same procedure (PropMEND paper, Algorithm 2): compute the inner loss on the
edits (the checkpoint says which: `clm` on the fact text or `sft` on atomic facts), capture the
rank-1 gradient factors of the edited weights, transform them, and add the update. Edits are
applied in turns of `edits_per_turn` (0: all at once); each turn's gradient is taken on the
model as the previous turns left it, which is how RLEdit edits sequentially. The editors
differ in their defaults and in the training recipe that produced their checkpoints. The
presets (`editor=propmend_smollm2_cpu`, ...) name a training config, `train_preset`, and use the
checkpoint its training wrote (see locations.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

import torch

from ripplebench.editors.base import Edit, EditHandle, Editor, EditorConfig, restore_parameters, snapshot_parameters

from .checkpoint import TrainedHypernet, read_checkpoint
from .config import TrainPreset, read_train_preset
from .grads import rank1_factors
from .locations import BEST, find_checkpoint, key_differences
from .losses import inner_batch, token_nll


@dataclass
class HypernetConfig(EditorConfig):
    # A best.pt (or last.pt) written by `ripplebench train-editor`; takes precedence.
    checkpoint: str = ""
    # A training config (bundled preset name or YAML file) whose checkpoint is used: found in
    # its out_dir ($RIPPLEBENCH_CACHE/hypernets/<name>/<key>/ by default) and refused if it was
    # trained for another model, layer set or losses than the config says.
    train_preset: str = ""
    # Edits per turn; 0 applies all edits of a request in one turn.
    edits_per_turn: int = 0
    # Optional guard: the layer range the checkpoint must have been trained on ("" = any).
    layers: str = ""
    max_length: int = 256


class HypernetEditor(Editor):
    """Shared implementation; the registered editors below only change defaults."""

    config_class = HypernetConfig

    def __init__(self, config: HypernetConfig | None = None, trained: TrainedHypernet | None = None) -> None:
        super().__init__(config)
        self._trained = trained  # set directly when validating during training

    @cached_property
    def train_preset(self) -> TrainPreset | None:
        return read_train_preset(self.config.train_preset) if self.config.train_preset else None

    def checkpoint_path(self) -> Path | None:
        """editor.checkpoint, else the training preset's best.pt if it is trained here, else None."""
        if self.config.checkpoint:
            return Path(self.config.checkpoint)
        preset = self.train_preset
        return find_checkpoint(dataclasses.asdict(preset.config)) if preset else None

    def status(self) -> str:
        if not (self.config.checkpoint or self.config.train_preset):
            return ""
        path = self.checkpoint_path()
        return "trained here" if path is not None and path.is_file() else "not trained here"

    @property
    def trained(self) -> TrainedHypernet:
        """The hypernetwork, loaded on first use; errors are one line saying what to do."""
        if self._trained is not None:
            return self._trained
        path, preset = self.checkpoint_path(), self.train_preset
        if path is None and preset is not None:
            raise FileNotFoundError(
                f"Hypernetwork '{preset.spec}' is not trained here (no {Path(preset.config.out_dir) / BEST}). "
                f"Train it with `{preset.command}` ({preset.cost}), or pass editor.checkpoint=PATH."
            )
        payload = read_checkpoint(path or "")
        if preset is not None:
            differences = key_differences(payload["train_config"], dataclasses.asdict(preset.config))
            if differences:
                raise ValueError(
                    f"Hypernetwork {path} was not trained by `{preset.command}` ({'; '.join(differences)}). "
                    f"Use it with editor={self.name},editor.checkpoint=PATH, or train this one."
                )
        self._trained = TrainedHypernet.from_checkpoint(payload, str(path))
        return self._trained

    def check(self, model_config: Any) -> None:
        if self.config.edits_per_turn < 0:
            raise ValueError(f"edits_per_turn must be 0 (all at once) or positive, not {self.config.edits_per_turn}.")
        trained = self.trained
        trained.check_model(model_config)
        if self.config.layers and self.config.layers != trained.layers:
            raise ValueError(
                f"Hypernetwork {trained.path} edits layers '{trained.layers}', but layers="
                f"'{self.config.layers}' was asked for. Use a checkpoint trained on those layers."
            )

    def apply(self, model, edits: Sequence[Edit]) -> EditHandle:
        trained = self.trained
        trained.check_model(model.model.config)
        network = trained.network.to(model.device).eval()
        parameters = dict(model.model.named_parameters())
        names = network.names
        missing = [name for name in names if name not in parameters]
        if missing:
            raise ValueError(f"Hypernetwork {trained.path} edits weights this model lacks: {', '.join(missing[:3])}.")
        handle = EditHandle(tuple(edits), saved=snapshot_parameters((name, parameters[name]) for name in names))
        size = self.config.edits_per_turn or len(edits)
        turns = [list(edits[start : start + size]) for start in range(0, len(edits), size)]
        try:
            for turn in turns:
                batch = inner_batch(model.tokenizer, turn, trained.inner_loss, self.config.max_length)
                batch = {key: value.to(model.device) for key, value in vars(batch).items()}

                def inner_loss() -> torch.Tensor:
                    logits = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                    return token_nll(logits, batch["labels"])

                factors, _ = rank1_factors(model.model, names, inner_loss)
                with torch.no_grad():
                    for name, update in network.updates(factors).items():
                        parameters[name].add_(update.to(parameters[name].dtype))
        except BaseException:
            restore_parameters(handle.saved)  # never leave a half-edited model behind
            raise
        handle.stats["turns"] = len(turns)
        return handle


class MEND(HypernetEditor):
    name = "mend"
    description = "MEND hypernetwork (Mitchell et al. 2022): needs editor.checkpoint or editor.train_preset (`ripplebench train-editor`)."


class PropMEND(HypernetEditor):
    name = "propmend"
    description = "PropMEND (MEND+Propagation, CLM inner loss, propagation outer loss): needs editor.checkpoint or editor.train_preset."


@dataclass
class RLEditConfig(HypernetConfig):
    edits_per_turn: int = 5  # the paper's multi-edit setting: 5 facts per turn


class RLEdit(HypernetEditor):
    name = "rledit"
    description = "RLEdit (Li et al. 2025): a hypernetwork applied turn by turn, 5 edits per turn; needs editor.checkpoint or editor.train_preset."
    config_class = RLEditConfig
