"""backend=vllm on a real vLLM (the CPU build here, `make test-vllm`; a GPU build where there is one).

On the embedded SmolLM2, for the first 40 documents of controlled_ripple_id, every edit is
applied once and its questions answered by vLLM (the edit pushed into it) and by the HF copy
in the same edited state: the answers must be identical. The LoRA editor is the one exception
allowed a bound: HF applies the adapter on top of the base weights while vLLM gets them merged,
two equivalent computations that can round apart on a near tie.

Skipped where vLLM is not installed (the main test environment).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from helpers import requires_controlled_ripple_splits

from ripplebench.editors import Edit, EditHandle, Editor, snapshot_parameters

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="needs vLLM: `make test-vllm` builds .venv-vllm with vLLM's CPU build and runs these",
    ),
    pytest.mark.slow,
    requires_controlled_ripple_splits,
]

TASK, DOCUMENTS = "controlled_ripple_id", 40
EXACT_EDITORS = ("none", "prepend", "memit_smollm2", "cpt")
LORA_DIFFERENCES_ALLOWED = 2  # of the 40 documents' questions, for cpt_lora (merged vs adapter)


@pytest.fixture(scope="module")
def started():
    """The embedded model on vLLM's device, with a vLLM engine started next to it."""
    from ripplebench.core.models import load_model, resolve_model, weights_dir
    from ripplebench.harness.backends.vllm import VLLMBackend, VLLMSettings, vllm_device

    source = resolve_model("smollm2-135m")
    device = vllm_device()
    loaded = load_model(source, device=device)
    backend = VLLMBackend.start(
        loaded, VLLMSettings(gpu_memory_utilization=0.3), folder=weights_dir(source), dtype="float32", batch_size=16
    )
    return loaded, backend


@pytest.fixture(scope="module")
def queries():
    from ripplebench.harness.backends.agreement import task_queries

    return task_queries(TASK, DOCUMENTS)


def report(result) -> str:
    return "\n".join(
        f"edit {item.edit_id}: {item.question!r}\n  hf:   {item.hf_answer!r}\n  vllm: {item.other_answer!r}"
        for item in result.differences
    )


@pytest.mark.parametrize("name", EXACT_EDITORS)
def test_vllm_answers_exactly_as_hf(started, queries, name):
    from ripplebench.editors import build_editor
    from ripplebench.harness.backends.agreement import compare_with_hf

    loaded, backend = started
    result = compare_with_hf(loaded, build_editor(name), backend, queries, batch_size=16)
    print(f"{name}: decoding hf {result.hf_seconds:.2f} s, vllm {result.other_seconds:.2f} s")
    assert result.questions == DOCUMENTS
    assert not result.differences, report(result)


def test_vllm_answers_as_hf_with_a_lora_adapter_within_the_bound(started, queries):
    from ripplebench.editors import build_editor
    from ripplebench.harness.backends.agreement import compare_with_hf

    loaded, backend = started
    result = compare_with_hf(loaded, build_editor("cpt_lora"), backend, queries, batch_size=16)
    print(f"cpt_lora: {len(result.differences)} of {result.questions} differ\n{report(result)}")
    assert len(result.differences) <= LORA_DIFFERENCES_ALLOWED, report(result)


class Amplify(Editor):
    """A test editor whose edit certainly changes the answers: it scales the MLP output of the
    middle layers (snapshotted, so reverting restores them bit for bit)."""

    name = "amplify"
    description = "scales some MLP weights (test only)"
    LAYERS = range(10, 20)

    def apply(self, model, edits) -> EditHandle:
        parameters = dict(model.model.named_parameters())
        names = [f"model.layers.{layer}.mlp.down_proj.weight" for layer in self.LAYERS]
        saved = snapshot_parameters((name, parameters[name]) for name in names)
        with torch.no_grad():
            for name in names:
                parameters[name].mul_(3.0)
        return EditHandle(tuple(edits), saved=saved)


def test_a_push_resets_the_prefix_cache(started):
    """Questions behind a long shared prefix (whole cache blocks) are asked before the edit,
    under it and after its revert: vLLM must answer each time as the HF copy does. Without the
    reset after each push it would answer from the KV cached under the previous weights, which
    the last part shows by disabling the reset."""
    from ripplebench.core.prompts import resolve_prompt_format
    from ripplebench.harness.engine import EditThenQuery, Query

    loaded, backend = started
    prefix = " ".join(f"Fact {number}: the river Velda flows through the town of Orsk." for number in range(40))
    edits = (Edit("amplify-1", "An edit that changes the answers."),)
    asked = [Query(edits, f"{prefix} Question {number}: which river flows through Orsk?") for number in range(4)]
    prompt_format = resolve_prompt_format("auto", loaded.tokenizer)
    hf = EditThenQuery(loaded, Amplify(), prompt_format, 16)
    engine = EditThenQuery(loaded, Amplify(), prompt_format, 16, backend=backend)

    before = engine.answer(asked)
    assert before == hf.answer(asked)
    handle = engine.apply(edits)
    edited = engine.answer(asked)
    assert edited == hf.answer(asked) and edited != before  # the edit changes them, vLLM sees it
    engine.revert(handle)
    assert engine.answer(asked) == before

    reset = backend.llm.reset_prefix_cache
    backend.llm.reset_prefix_cache = lambda: True  # pretend to reset: the cached KV stays
    try:
        handle = engine.apply(edits)
        stale = engine.answer(asked)
        engine.revert(handle)
    finally:
        backend.llm.reset_prefix_cache = reset
        reset()
    assert stale != edited, "the prefix was not cached (stale answers equal fresh ones): this test cannot see a reset"
