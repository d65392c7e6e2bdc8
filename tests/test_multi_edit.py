"""Multi-edit tasks (paper section 6, Table 3): grouping, documents, per-position metrics, the
context-window check, and every editor applying and reverting a 10-edit group exactly."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from helpers import parameters_hash, requires_controlled_ripple_splits
from test_mend import checkpoint, data_files  # noqa: F401 (fixtures: a tiny trained hypernetwork)
from test_tasks import load_utils, write_jsonl

from ripplebench.editors import AtomicFact, Edit, build_editor
from ripplebench.harness.documents import edits_from_doc, sample_key
from ripplebench.harness.engine import EditThenQuery, Query

utils = load_utils()
PEOPLE = [
    "Elizabeth Ruiz",
    "Adam Jacobson",
    "Maria Olsen",
    "Tom Berg",
    "Ana Lima",
    "Bram Sayles",
    "Ida Holm",
    "Karl Weber",
    "Lena Frost",
    "Omar Haddad",
]
COUNTRIES = ["Kenya", "Malaysia", "France", "Japan", "Norway", "India", "Chile", "Peru", "Ghana", "Nepal"]


def instance(number: int, questions: int) -> dict:
    person, country = PEOPLE[number % 10], COUNTRIES[number % 10]
    return {
        "id": f"x{number}",
        "subject_type": "person",
        "text": f"{person} was born in {country}.",
        "atomic_facts": [{"prompt": f"{person} was born in", "target": country, "subject": person}],
        "questions": [
            {
                "alias_question": f"Question {q} about the country where {person} was born?",
                "unalias_question": f"Question {q} about {country}?",
                "answer": f"answer {q}",
            }
            for q in range(questions)
        ],
    }


GROUP = [
    Edit(
        id=f"e{i}",
        fact=f"{PEOPLE[i]} was born in {COUNTRIES[i]}.",
        atomic_facts=(AtomicFact(f"{PEOPLE[i]} was born in", COUNTRIES[i], PEOPLE[i]),),
        subject_type="person",
    )
    for i in range(10)
]


def test_grouping_is_deterministic_and_covers_each_instance_once():
    groups = utils.group_instances(list(range(35)), 10)
    assert groups == utils.group_instances(list(range(35)), 10)
    assert [len(group) for group in groups] == [10, 10, 10, 5]  # the remainder is a smaller last group
    assert sorted(item for group in groups for item in group) == list(range(35))
    assert groups != utils.group_instances(list(range(35)), 10, seed=1)
    assert groups[0] != list(range(10)), "instances are shuffled, not taken in file order"
    # One seed, one order: a group of 20 is two consecutive groups of 10.
    assert utils.group_instances(list(range(35)), 20)[0] == groups[0] + groups[1]
    with pytest.raises(ValueError, match="group_size must be a positive number of edits, not 0"):
        utils.group_instances([1], 0)


def test_group_documents_carry_all_edits_and_go_round_robin_over_the_facts(tmp_path):
    path = write_jsonl(tmp_path / "split.jsonl", [instance(0, 3), instance(1, 2), instance(2, 2)])
    docs = utils.read_group_documents(path, 2)
    assert {doc["group_id"]: doc["group_size"] for doc in docs} == {"g001": 2, "g002": 1}
    assert sorted((d["edit_id"], d["question_id"], d["kind"]) for d in docs) == sorted(
        (d["edit_id"], d["question_id"], d["kind"]) for d in utils.read_documents(path)
    )
    for doc in docs:
        members = [d for d in docs if d["group_id"] == doc["group_id"]]
        edit_ids = [edit.id for edit in edits_from_doc(doc, "doc")]
        assert set(edit_ids) == {d["edit_id"] for d in members}
        assert edit_ids[doc["position"] - 1] == doc["edit_id"] and doc["group_size"] == len(edit_ids)
        assert "fact" not in doc, "the facts are in `edits` only"
    first = [d for d in docs if d["group_id"] == "g001"]
    # question 0 of each member (efficacy, specificity), then question 1 of each, ...
    assert [(d["position"], d["question_id"], d["kind"][0]) for d in first[:4]] == [
        (1, 0, "e"),
        (1, 0, "s"),
        (2, 0, "e"),
        (2, 0, "s"),
    ]
    assert docs[: len(first)] == first, "a group's documents are contiguous, so --limit takes whole groups"


def test_efficacy_documents_also_report_their_position():
    doc = {"kind": "efficacy", "question": "Where?", "answers": ["Kenya"], "position": 3}
    assert utils.process_results(doc, [" Kenya"]) == {"efficacy": 1.0, "efficacy_pos03": 1.0}
    assert utils.process_results({**doc, "kind": "specificity"}, [" no"]) == {"specificity": 0.0}


def test_pairing_key_keeps_the_own_instance_and_adds_the_group():
    doc = {"edit_id": "x1", "question_id": 0, "kind": "efficacy"}
    assert sample_key({"doc": doc}) == ("x1", 0, "efficacy")
    assert sample_key({"doc": {**doc, "group_id": "g002"}}) == ("x1", 0, "efficacy", "g002")


def test_every_test_split_has_multi10_and_multi20_task_files():
    from test_tasks import TASK_DIR

    for split in utils.SAMPLE_SPLITS:
        for size in (10, 20):
            text = (TASK_DIR / f"controlled_ripple_{split}_multi{size}.yaml").read_text()
            assert f"split: {split}\n" in text and f"group_size: {size}\n" in text and "group_seed: 0" in text
            assert f"include: _multi{size}_template_yaml" in text
            template = (TASK_DIR / f"_multi{size}_template_yaml").read_text()
            assert "metric: efficacy_pos01\n" in template and f"metric: efficacy_pos{size}\n" in template
            assert f"efficacy_pos{size + 1}" not in template


@requires_controlled_ripple_splits
@pytest.mark.parametrize(("split", "size", "groups"), [("id", 10, 50), ("id", 20, 25), ("ood_both", 20, 18)])
def test_multi_tasks_read_every_question_of_their_split_once(split, size, groups):
    docs = utils.load_group_split(split, size)["test"].to_list()
    keys = [(d["edit_id"], d["question_id"], d["kind"]) for d in docs]
    assert sorted(keys) == sorted((d["edit_id"], d["question_id"], d["kind"]) for d in utils.load_split(split)["test"])
    sizes = Counter(
        d["group_size"] for d in docs if d["position"] == 1 and d["question_id"] == 0 and d["kind"] == "efficacy"
    )
    assert sum(sizes.values()) == groups and max(sizes) == size
    assert all(len(d["edits"]) == d["group_size"] and len(d["edits"][0]["atomic_facts"]) == 3 for d in docs)


def test_prompt_longer_than_the_context_window_is_refused(tiny):
    tiny.model.config.max_position_embeddings = 256  # ten prepended facts of ~60 characters do not fit
    engine = EditThenQuery(tiny, build_editor("prepend"), "chat", batch_size=4)
    long_group = tuple(
        Edit(id=f"e{i}", fact=f"{PEOPLE[i]} was born in {COUNTRIES[i]} and moved to Quixotic Land.") for i in range(10)
    )
    with pytest.raises(
        ValueError,
        match=r"The prompt for edits e0, e1, e2 and 7 more is \d+ tokens; with 5 new "
        r"tokens it exceeds the model's context window of 256 tokens",
    ):
        engine.run([Query(long_group, "Where?", max_new_tokens=5)], progress=False)
    assert len(engine.run([Query(tuple(GROUP[:2]), "Where?", max_new_tokens=5)], progress=False)) == 1


FAST_LOCATE = {"mom2_dataset": "ctrl_ripple_sample", "mom2_n_samples": 40, "prefix_count": 2, "v_num_grad_steps": 3}
GROUP_EDITORS = [
    ("none", {}),
    ("prepend", {}),
    ("cpt", {"epochs": 1}),
    ("memit", {**FAST_LOCATE, "layers": "0-1"}),
    ("alphaedit", {**FAST_LOCATE, "layers": "0-1"}),
    ("alphaedit", {**FAST_LOCATE, "layers": "0-1", "edits_per_batch": 5}),
    ("jeep", {**FAST_LOCATE, "layers": "0-1", "high_layers": "2-3"}),
    ("mend", {}),
    ("propmend", {}),
    ("rledit", {"edits_per_turn": 5}),
]


@pytest.mark.parametrize(("name", "overrides"), GROUP_EDITORS)
def test_every_editor_applies_a_10_edit_group_and_reverts_bit_for_bit(tiny, tmp_path, checkpoint, name, overrides):  # noqa: F811
    if name in ("mend", "propmend", "rledit"):
        overrides = {**overrides, "checkpoint": str(checkpoint)}
    if name in ("memit", "alphaedit", "jeep"):
        overrides = {**overrides, "cache_dir": str(tmp_path)}
    editor = build_editor(name, overrides)
    before = parameters_hash(tiny.model)
    handle = editor.apply(tiny, GROUP)
    if name == "prepend":
        assert all(edit.fact in handle.context for edit in GROUP)
    elif name != "none":
        assert parameters_hash(tiny.model) != before, f"{name} should change the weights"
    if name in ("memit", "alphaedit", "jeep"):
        assert handle.stats["atomic_facts"] == 10 and handle.stats["batches"] == (
            2 if "edits_per_batch" in overrides else 1
        )
    if name == "rledit":
        assert handle.stats["turns"] == 2
    editor.revert(handle)
    assert parameters_hash(tiny.model) == before
    if name == "alphaedit":
        assert editor.preserved == {}


def test_alphaedit_batches_within_one_apply_equal_applying_them_one_after_the_other(tiny, tmp_path):
    # Without generated prefixes the two ways see the same inputs, so they must agree.
    settings = {**FAST_LOCATE, "prefix_count": 0, "layers": "0-1", "cache_dir": str(tmp_path)}
    weight = tiny.model.model.layers[1].mlp.down_proj.weight
    batched = build_editor("alphaedit", {**settings, "edits_per_batch": 5})
    handle = batched.apply(tiny, GROUP)
    in_batches = weight.detach().clone()
    batched.revert(handle)
    one_by_one = build_editor("alphaedit", settings)
    first = one_by_one.apply(tiny, GROUP[:5])
    second = one_by_one.apply(tiny, GROUP[5:])
    torch.testing.assert_close(in_batches, weight.detach())
    one_by_one.revert(second)
    one_by_one.revert(first)
    together = one_by_one.apply(tiny, GROUP)
    assert not torch.allclose(in_batches, weight.detach()), "one batch of 10 is not the sequential result"
    one_by_one.revert(together)


@requires_controlled_ripple_splits
def test_lm_eval_runs_a_multi_edit_task_and_logs_group_membership(tiny_model_dir, tmp_path):
    from test_lm_eval import run_lm_eval

    _, results = run_lm_eval(
        tmp_path,
        "--model",
        "editing",
        "--model_args",
        f"model={tiny_model_dir},editor=cpt,editor.epochs=1",
        "--tasks",
        "controlled_ripple_ood_both_multi10",
        "--limit",
        "40",
        "--batch_size",
        "8",
        "--log_samples",
    )
    metrics = results["results"]["controlled_ripple_ood_both_multi10"]
    assert {"efficacy,none", "specificity,none", "efficacy_pos01,none", "efficacy_pos10,none"} <= set(metrics)
    assert results["config"]["ripplebench"]["edit_stats"]["edit_groups"] == 2  # 24 documents in group 1, 22 in 2
    samples = [json.loads(line) for line in next(tmp_path.rglob("samples_*.jsonl")).read_text().splitlines()]
    assert len(samples) == 40 and all(s["doc"]["group_id"] in ("g001", "g002") for s in samples)
    assert len({sample_key(s) for s in samples}) == 40
