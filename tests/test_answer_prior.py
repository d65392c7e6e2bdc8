"""The answer-prior check: a fixed answer per relation against a run's efficacy."""

from __future__ import annotations

import json

import pytest

from ripplebench.leaderboards.answer_prior import answer_prior, main, majority_answers, read_samples


def instance(*pairs: tuple[str, str]) -> dict:
    questions = [{"alias_question": "a?", "unalias_question": "u?", "relation_id": r, "answer": a} for r, a in pairs]
    return {"text": "A fact.", "questions": questions}


TRAIN = [
    instance(("species:diet", "carnivore"), ("work:language", "English")),
    instance(("species:diet", "carnivore"), ("work:language", "French")),
    instance(("species:diet", "herbivore"), ("work:language", "English")),
]


def sample(relation: str, answers: list[str], efficacy: float, kind: str = "efficacy") -> dict:
    doc = {"kind": kind, "relation_id": relation, "question": "What is it?", "answers": answers}
    return {"doc": doc, kind: efficacy}


def test_majority_answer_per_relation():
    assert majority_answers(TRAIN) == {"species:diet": "carnivore", "work:language": "English"}


def test_answer_prior_counts_hits_and_their_overlap_with_the_majority_answer():
    samples = [
        sample("species:diet", ["carnivore"], 1.0),  # right, and the prior would be too
        sample("species:diet", ["herbivore"], 1.0),  # right where the prior is wrong
        sample("work:language", ["English"], 0.0),  # the prior alone is right
        sample("work:language", ["German"], 0.0),
    ]
    assert answer_prior(samples, majority_answers(TRAIN)) == {
        "questions": 4,
        "efficacy": 0.5,
        "majority_answer_efficacy": 0.5,
        "correct": 2,
        "correct_with_majority_answer": 1,
        "efficacy_where_prior_wrong": 0.5,  # herbivore right, German wrong
    }


def test_a_relation_the_training_split_lacks_takes_its_majority_answer_among_the_samples():
    samples = [
        sample("country:religion", ["Christianity"], 1.0),
        sample("country:religion", ["Christianity"], 0.0),
        sample("country:religion", ["Islam"], 1.0),
    ]
    assert answer_prior(samples, majority_answers(TRAIN)) == {
        "questions": 3,
        "efficacy": 0.6667,
        "majority_answer_efficacy": 0.6667,
        "correct": 2,
        "correct_with_majority_answer": 1,
        "efficacy_where_prior_wrong": 1.0,
    }


def test_command_reads_samples_files_and_rejects_other_tasks(tmp_path, capsys):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(row) + "\n" for row in TRAIN))
    samples = tmp_path / "samples.jsonl"
    rows = [sample("species:diet", ["carnivore"], 1.0), sample("species:diet", ["carnivore"], 0.0, kind="specificity")]
    samples.write_text("".join(json.dumps(row) + "\n" for row in rows))
    main([str(samples), "--train", str(train)])
    assert f"| {samples} | 1 | 1.000 | 1.000 | 1 | 1 | - |" in capsys.readouterr().out
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"doc": {"question": "q"}, "exact_match": 1.0}) + "\n")
    with pytest.raises(ValueError, match="controlled_ripple_"):
        read_samples(other)
