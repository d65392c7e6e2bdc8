"""Controlled RippleEdit task data and exact-match scoring."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from helpers import requires_controlled_ripple_splits

import ripplebench.tasks
from ripplebench.harness.data.controlled_ripple.splits import SPLITS, TASK_SPLITS, task_name
from ripplebench.harness.metrics import exact_match

TASK_DIR = Path(ripplebench.tasks.__file__).parent / "controlled_ripple"


def load_utils():
    spec = importlib.util.spec_from_file_location("controlled_ripple_utils", TASK_DIR / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


utils = load_utils()

INSTANCE = {
    "id": "x1",
    "subject_type": "person",
    "text": "Elizabeth Ruiz was born in Kenya.",
    "questions": [
        {
            "alias_question": "What is the currency of the country where Elizabeth Ruiz was born?",
            "unalias_question": "What is the currency of Kenya?",
            "answer": "Kenyan shilling",
            "answer_aliases": ["KES"],
        }
    ],
}


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.parametrize(
    ("question", "prediction", "answers", "expected"),
    [
        ("What is the capital of Malaysia?", " Kuala Lumpur.", ["Kuala Lumpur"], 1.0),
        ("What is the capital of Malaysia?", " Kuala  Lumpur", ["Kuala Lumpur"], 1.0),
        ("What is the capital of Malaysia?", " kuala lumpur", ["Kuala Lumpur"], 0.0),  # case matters
        ("What is the ISO alpha-2 code for the country where Bram lived?", " It is", ["AM"], 0.0),
        ("What is the capital of Malaysia?", " Putrajaya", ["Kuala Lumpur"], 0.0),
        ("Where was Frida Kahlo born?", " In Mexico City", ["Coyoacán", "Mexico City"], 1.0),
        # the paper's EM also searches the question (why Forgetfulness EM is inflated)
        ("Is Kenya's currency the Kenyan shilling?", " No.", ["Kenyan shilling"], 1.0),
        ("What is it?", " anything", ["", "  "], 0.0),
    ],
)
def test_exact_match_searches_question_plus_answer(question, prediction, answers, expected):
    assert exact_match(question, prediction, answers) == expected


def test_each_question_becomes_an_efficacy_and_a_specificity_document(tmp_path):
    docs = utils.read_documents(write_jsonl(tmp_path / "d.jsonl", [INSTANCE]))
    assert [d["kind"] for d in docs] == ["efficacy", "specificity"]
    assert docs[0]["question"] == INSTANCE["questions"][0]["alias_question"]
    assert docs[1]["question"] == "What is the currency of Kenya?"
    for doc in docs:
        assert doc["edit_id"] == "x1" and doc["fact"] == INSTANCE["text"]
        assert doc["subject_type"] == "person"
        assert doc["answers"] == ["Kenyan shilling", "KES"]


def test_process_results_reports_under_the_documents_kind(tmp_path):
    efficacy, specificity = utils.read_documents(write_jsonl(tmp_path / "d.jsonl", [INSTANCE]))
    assert utils.process_results(efficacy, [" The Kenyan shilling."]) == {"efficacy": 1.0}
    assert utils.process_results(specificity, [" The euro."]) == {"specificity": 0.0}


def test_instances_without_an_id_get_one_from_file_and_line(tmp_path):
    row = {k: v for k, v in INSTANCE.items() if k != "id"}
    docs = utils.read_documents(write_jsonl(tmp_path / "official.jsonl", [row, row]))
    assert {d["edit_id"] for d in docs} == {"official-1", "official-2"}


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"questions": INSTANCE["questions"]}, r"d.jsonl:2: instance has no fact"),
        ({"text": "A fact.", "questions": []}, r"d.jsonl:2: instance has no questions"),
        ({"text": "A fact."}, r"d.jsonl:2: instance has no questions"),
        (
            {"text": "A fact.", "questions": [{"alias_question": "q?", "answer": "a"}]},
            "question 0 lacks unalias_question",
        ),
    ],
)
def test_a_bad_instance_is_named_by_file_and_line(tmp_path, broken, message):
    path = write_jsonl(tmp_path / "d.jsonl", [INSTANCE, broken])
    with pytest.raises(ValueError, match=message):
        utils.read_documents(path)


@pytest.mark.parametrize("split", utils.SAMPLE_SPLITS)
def test_committed_samples_load(split):
    docs = utils.read_documents(utils.sample_file(split))
    assert len(docs) > 0 and len(docs) % 2 == 0
    assert {d["kind"] for d in docs} == {"efficacy", "specificity"}


@requires_controlled_ripple_splits
@pytest.mark.parametrize(("split", "instances"), [(task, SPLITS[split].size) for task, split in TASK_SPLITS.items()])
def test_each_task_reads_its_full_generated_split(split, instances):
    dataset = utils.load_split(split)["test"]
    assert len(set(dataset["edit_id"])) == instances
    assert dataset["kind"].count("efficacy") == dataset["kind"].count("specificity") == len(dataset) // 2
    assert all(dataset["relation_id"]) and all(dataset["entity_id"])


def test_every_task_split_has_a_task_file():
    for split in TASK_SPLITS:
        assert f"split: {split}" in (TASK_DIR / f"{task_name(split)}.yaml").read_text()


def test_unknown_split_lists_the_valid_ones():
    with pytest.raises(ValueError, match="Valid: id, ood_entity, ood_relation, ood_both, val"):
        utils.split_file("ood")
