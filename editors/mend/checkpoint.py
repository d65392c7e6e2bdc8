"""Hypernetwork checkpoints: weights, the training config, the model they belong to, progress.

A checkpoint is one `torch.save` file holding plain data (loadable with weights_only=True):
`train_config` (dict), `model` (name and architecture fingerprint), `targets` (edited weight
names and shapes), `hypernet` (state dict), `step`, `best_loss`, `best_step`, and in last.pt
(for resuming) the `optimizer` state. It is written to a temporary file and renamed, so an interrupted save never
corrupts the previous one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ripplebench.core.io import atomic_path

from .network import HyperNetwork

FINGERPRINT_KEYS = ("model_type", "num_hidden_layers", "hidden_size", "intermediate_size", "vocab_size")


def fingerprint(model_config: Any) -> dict[str, Any]:
    """The architecture facts a hypernetwork depends on."""
    return {key: getattr(model_config, key, None) for key in FINGERPRINT_KEYS}


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically: a killed save never leaves a torn file."""
    with atomic_path(path) as staging:
        torch.save(payload, staging)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    if not str(path).strip():
        raise ValueError(
            "This editor needs a trained hypernetwork: pass editor.checkpoint=PATH (a best.pt "
            "written by `ripplebench train-editor CONFIG`)."
        )
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"Hypernetwork checkpoint '{path}' does not exist. Train one with `ripplebench train-editor CONFIG`."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a torch file, truncated, or holding more than plain data
        raise ValueError(
            f"Hypernetwork checkpoint '{path}' cannot be read ({type(error).__name__}): expected a best.pt "
            "or last.pt written by `ripplebench train-editor CONFIG`, copied completely."
        ) from None


@dataclass
class TrainedHypernet:
    """A loaded hypernetwork with what editing needs to know about its training."""

    network: HyperNetwork
    inner_loss: str
    layers: str
    model: dict[str, Any]  # {"name": ..., "fingerprint": {...}}
    path: str = ""

    @classmethod
    def from_checkpoint(cls, payload: dict[str, Any], path: str = "") -> "TrainedHypernet":
        config = payload["train_config"]
        network = HyperNetwork(
            {name: tuple(shape) for name, shape in payload["targets"]},
            rank=config["rank"],
            n_hidden=config["n_hidden"],
            shared=config["shared"],
            edit_lr=config["edit_lr"],
        )
        network.load_state_dict(payload["hypernet"])
        network.eval()
        return cls(network, config["inner_loss"], config["layers"], payload["model"], str(path))

    def check_model(self, model_config: Any) -> None:
        """Raise ValueError if this hypernetwork was trained for a different architecture."""
        expected, actual = self.model["fingerprint"], fingerprint(model_config)
        if expected != actual:
            differences = ", ".join(
                f"{k}: trained {expected[k]}, given {actual[k]}" for k in expected if expected[k] != actual.get(k)
            )
            raise ValueError(
                f"Hypernetwork {self.path or '(in memory)'} was trained for model '{self.model['name']}' "
                f"and does not fit this model ({differences}). Train one for this model with "
                "`ripplebench train-editor CONFIG`."
            )
