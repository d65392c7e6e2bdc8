"""Memory guard: a training editor that would not fit fails before training, with its estimate
and settings that fit, instead of being killed for memory halfway."""

from __future__ import annotations

import re
import sys

import pytest
from helpers import parameters_hash

import ripplebench.editors.cpt as cpt_module
from ripplebench.editors import Edit, build_editor, memory

EDIT = Edit(id="e1", fact="Elizabeth Ruiz was born in Kenya.", subject_type="person")


def fake_memory(monkeypatch, available: int | None) -> None:
    monkeypatch.setattr(cpt_module, "available_memory", lambda device: available)


def test_the_estimate_is_four_copies_of_every_trained_parameter(tiny):
    editor = build_editor("cpt")
    parameters = list(tiny.model.parameters())
    assert editor.memory_needed(tiny.model, "", 0) == 4 * 4 * sum(p.numel() for p in parameters)
    top = [p for name, p in tiny.model.named_parameters() if ".layers.3." in name]
    assert editor.memory_needed(tiny.model, "3", 0) == 4 * 4 * sum(p.numel() for p in top)
    # LoRA rank r on a Linear of shape (out, in) trains r * (in + out) adapter weights.
    linears = [m for name, m in tiny.model.model.layers.named_modules() if name.endswith(("_proj",))]
    expected = 4 * 4 * sum(8 * (m.in_features + m.out_features) for m in linears)
    assert editor.memory_needed(tiny.model, "", 8) == expected


def test_full_cpt_that_does_not_fit_fails_before_training_and_names_what_fits(tiny, monkeypatch):
    editor = build_editor("cpt")
    available = editor.memory_needed(tiny.model, "", 16) + 1  # a rank-16 adapter just fits
    top = available // editor.memory_needed(tiny.model, "3", 0)  # and this many layers
    assert 1 <= top < 4
    fake_memory(monkeypatch, available)
    monkeypatch.setattr(cpt_module, "train", lambda *a, **k: pytest.fail("training started"))
    before = parameters_hash(tiny.model)
    with pytest.raises(MemoryError) as raised:
        editor.apply(tiny, [EDIT])
    message = str(raised.value)
    assert re.search(
        rf"Editor 'cpt' with layers='all', lora_rank=0 needs at least [0-9.]+ MiB more memory to train .* on {tiny.device}, "
        rf"but [0-9.]+ MiB is available\. Settings that fit: editor\.layers={4 - top}-3 \([0-9.]+ MiB\), "
        r"editor\.lora_rank=16 \([0-9.]+ MiB\)\.",
        message,
    ), message
    assert parameters_hash(tiny.model) == before


def test_the_suggested_setting_then_trains(tiny, monkeypatch):
    editor = build_editor("cpt", {"epochs": 1})
    fake_memory(monkeypatch, 2 * editor.memory_needed(tiny.model, "3", 0) + 1)
    with pytest.raises(MemoryError, match=r"editor\.layers=(\d+-\d+)") as raised:
        editor.apply(tiny, [EDIT])
    layers = re.search(r"editor\.layers=(\d+-\d+)", str(raised.value)).group(1)
    fitting = build_editor("cpt", {"epochs": 1, "layers": layers})
    fitting.revert(fitting.apply(tiny, [EDIT]))


def test_nothing_fits_says_so(tiny, monkeypatch):
    fake_memory(monkeypatch, 10)
    with pytest.raises(MemoryError, match="is available. No smaller setting fits either."):
        build_editor("active_reading_cpt").apply(tiny, [EDIT])


def test_unknown_available_memory_or_enough_of_it_trains(tiny, monkeypatch):
    editor = build_editor("cpt", {"epochs": 1, "lora_rank": 4})
    for available in (None, editor.memory_needed(tiny.model, "", 4)):
        fake_memory(monkeypatch, available)
        editor.revert(editor.apply(tiny, [EDIT]))


def test_available_memory_falls_back_to_proc_meminfo(tmp_path, monkeypatch):
    import torch

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:    2048 kB\n")
    monkeypatch.setattr(memory, "MEMINFO", meminfo)
    monkeypatch.setitem(sys.modules, "psutil", None)  # as if psutil were not installed
    assert memory.available_memory(torch.device("cpu")) == 2048 * 1024
    monkeypatch.setattr(memory, "MEMINFO", tmp_path / "absent")
    assert memory.available_memory(torch.device("cpu")) is None
