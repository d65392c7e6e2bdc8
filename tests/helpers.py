"""Helpers shared by tests."""

from __future__ import annotations

import hashlib

import torch


def parameters_hash(model: torch.nn.Module) -> str:
    """A digest of every parameter's name and exact bytes."""
    digest = hashlib.sha256()
    for name, parameter in model.state_dict().items():
        digest.update(name.encode())
        digest.update(parameter.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
