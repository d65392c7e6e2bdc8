"""Revert audit: every registered editor (built-ins, presets, an entry-point editor installed
here) applies and reverts three different edits in turn; after each revert every parameter and
buffer of the model hashes as it did before the first edit."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import torch
from test_mend import checkpoint, data_files  # noqa: F401 (fixtures: a tiny trained hypernetwork)
from test_plugins import plugin_path  # noqa: F401 (fixture: the README's entry-point editor)

from ripplebench.editors import AtomicFact, Edit, available_editors, build_editor


def _edit(number: int, subject: str, relation: str, target: str, subject_type: str) -> Edit:
    return Edit(
        id=f"audit-{number}",
        fact=f"{subject} {relation} {target}.",
        atomic_facts=(AtomicFact(f"{subject} {relation}", target, subject),),
        subject_type=subject_type,
    )


EDITS = (
    _edit(1, "Elizabeth Ruiz", "was born in", "Kenya", "person"),
    _edit(2, "Veltrix Dynamics", "was founded in", "France", "company"),
    _edit(3, "Adam Jacobson", "spent most of his adult life in", "Malaysia", "person"),
)
# Everything the editor does stays on the tiny model: a short corpus for MEMIT-style statistics,
# one epoch of training, short Active Reading generations.
LOCATE = {"mom2_dataset": "ctrl_ripple_sample", "mom2_n_samples": 40, "prefix_count": 2, "v_num_grad_steps": 3}


def model_hash(model: torch.nn.Module) -> str:
    """A digest of every parameter's and buffer's name, dtype, shape and exact bytes."""
    digest = hashlib.sha256()
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|{tensor.requires_grad}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def tiny_overrides(name: str, checkpoint_path: str, cache_dir: str) -> dict[str, Any]:
    """Settings that make editor or preset `name` run on the 4-layer tiny model, chosen from
    the fields its config has (so a new preset is covered without editing this test)."""
    config = build_editor(name).config
    fields = vars(config)
    overrides: dict[str, Any] = {}
    if "checkpoint" in fields:
        overrides["checkpoint"] = checkpoint_path
    if "train_preset" in fields:
        # A preset refuses checkpoints trained for another model (tested in test_mend); the
        # tiny checkpoint is used as the plain editor with the preset's other settings.
        overrides["train_preset"] = ""
    if "mom2_dataset" in fields:
        overrides.update(LOCATE, layers="0-1", cache_dir=cache_dir)
    if "high_layers" in fields:
        overrides["high_layers"] = "2-3"
    if "lora_rank" in fields:
        overrides["epochs"] = 1
        if config.layers:
            overrides["layers"] = "2-3"
    if "generator" in fields:
        overrides.update(max_new_tokens=8, max_strategies=2, cache_dir=cache_dir)
    return overrides


# "repeat" is the entry-point editor the plugin_path fixture installs.
@pytest.mark.parametrize("name", [*available_editors(), "repeat"])
def test_three_edits_in_turn_each_revert_to_the_original_bytes(name, tiny, checkpoint, plugin_path, tmp_path):  # noqa: F811
    if name == "repeat":
        assert available_editors()[name].source == "my-editors"
    editor = build_editor(name, tiny_overrides(name, str(checkpoint), str(tmp_path)))
    editor.check(tiny.model.config)
    original = model_hash(tiny.model)
    for edit in EDITS:
        handle = editor.apply(tiny, [edit])
        if not handle.context and name != "none":
            assert model_hash(tiny.model) != original, f"{name} changed nothing: the audit would prove nothing"
        editor.revert(handle)
        assert model_hash(tiny.model) == original, f"{name}: the model differs after reverting {edit.id}"
    assert not tiny.model.training
