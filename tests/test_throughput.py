"""benchmarks/throughput.py: its reference-style loop and the engine answer alike (not timed)."""

from __future__ import annotations

import pytest
from helpers import load_benchmark, parameters_hash


@pytest.fixture(scope="module")
def throughput():
    return load_benchmark("throughput")


@pytest.mark.parametrize(
    "name, overrides",
    [("none", {}), ("prepend", {}), ("cpt", {"lr": 1e-2, "epochs": 2})],
)
def test_reference_loop_and_engine_give_identical_answers(throughput, tiny, name, overrides):
    from ripplebench.editors.registry import build_editor

    queries = throughput.load_queries(3)
    before = parameters_hash(tiny.model)
    reference, reference_stats = throughput.reference_loop(tiny, build_editor(name, overrides), "chat", queries)
    assert parameters_hash(tiny.model) == before
    engine, engine_stats = throughput.engine_loop(tiny, build_editor(name, overrides), "chat", queries, batch_size=4)
    assert parameters_hash(tiny.model) == before
    assert engine == reference and len(reference) == len(queries)
    assert len(engine_stats) == len(reference_stats) == 3
    assert throughput.differences(queries, reference, engine) == []


def test_a_changed_answer_is_listed_with_its_edit_and_question(throughput):
    queries = throughput.load_queries(1)
    listed = throughput.differences(queries[:2], ["a", "b"], ["a", "c"])
    assert listed == [
        {"edit": queries[1].edits[0].id, "question": queries[1].question, "reference": "b", "engine": "c"}
    ]
