"""How much of a Controlled RippleEdit efficacy score one fixed answer per relation explains.

    python -m ripplebench.leaderboards.answer_prior results/val/*/samples_controlled_ripple_val_*.jsonl

Controlled RippleEdit asks each relation about a few dozen real entities, so some answers recur
("carnivore" for a species' diet, "English" for a work's language). A meta-trained editor can
learn to give a relation's most frequent answer without propagating the edited fact. For each
`--log_samples` file of a controlled_ripple_* task this prints the file's EM efficacy, the
efficacy of answering every efficacy question with its relation's majority answer in the
training split (the answer prior), how many of the file's correct answers are that answer, and
the file's efficacy on the questions that answer gets wrong.
Relations the training split lacks (those of the OOD-relation splits) take their majority answer
among the file's own efficacy questions instead: a fixed answer per relation that knows the test
answers' frequencies, so an upper bound on what such a prior explains there.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

from ripplebench.core.io import read_jsonl
from ripplebench.core.paths import CONTROLLED_RIPPLE_DATA_DIR
from ripplebench.harness.data.controlled_ripple.read import read_instances
from ripplebench.harness.data.controlled_ripple.splits import split_path
from ripplebench.harness.documents import EFFICACY, KIND_FIELD, RELATION_FIELD, question_and_answers
from ripplebench.harness.metrics import exact_match

TRAIN_SPLIT = split_path(CONTROLLED_RIPPLE_DATA_DIR, "train")


def most_frequent(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Each relation id's most frequent answer among (relation id, answer) pairs (ties: the first seen)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for relation, answer in pairs:
        counts[relation][answer] += 1
    return {relation: answers.most_common(1)[0][0] for relation, answers in counts.items() if relation}


def majority_answers(instances: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Each relation id's most frequent gold answer in Controlled RippleEdit instances."""
    return most_frequent((q.get(RELATION_FIELD, ""), q["answer"]) for i in instances for q in i["questions"])


def efficacy_samples(records: Iterable[dict[str, Any]], source: str | Path) -> list[dict[str, Any]]:
    """The efficacy records among a sample log's records; `source` names the log in the error."""
    efficacy = [record for record in records if record.get("doc", {}).get(KIND_FIELD) == EFFICACY]
    if not efficacy or RELATION_FIELD not in efficacy[0]["doc"]:
        raise ValueError(
            f"{source} has no efficacy documents with a relation_id: pass a --log_samples file of a "
            "controlled_ripple_* task."
        )
    return efficacy


def read_samples(path: Path) -> list[dict[str, Any]]:
    """The efficacy records of an lm-eval samples file (one JSON object per line)."""
    return efficacy_samples(read_jsonl(path), path)


def answer_prior(samples: Sequence[dict[str, Any]], majority: dict[str, str]) -> dict[str, Any]:
    """The samples' efficacy, the majority-answer efficacy, and the overlap of the two.

    A relation missing from `majority` takes its most frequent gold answer among the samples."""
    own = most_frequent(
        (record["doc"][RELATION_FIELD], question_and_answers(record["doc"])[1][0]) for record in samples
    )
    correct = prior = both = 0
    for record in samples:
        doc = record["doc"]
        guess = majority.get(doc[RELATION_FIELD]) or own.get(doc[RELATION_FIELD], "")
        question, answers = question_and_answers(doc)
        hit = record[EFFICACY] == 1.0
        prior_hit = bool(guess) and exact_match(question, guess, answers) == 1.0
        correct, prior, both = correct + hit, prior + prior_hit, both + (hit and prior_hit)
    count = len(samples)
    return {
        "questions": count,
        "efficacy": round(correct / count, 4),
        "majority_answer_efficacy": round(prior / count, 4),
        "correct": correct,
        "correct_with_majority_answer": both,
        # the questions the prior gets wrong: an editor's score there is not that fixed answer
        "efficacy_where_prior_wrong": round((correct - both) / (count - prior), 4) if count > prior else None,
    }


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("samples", nargs="+", type=Path, help="lm-eval --log_samples files (samples_*.jsonl)")
    parser.add_argument("--train", type=Path, default=TRAIN_SPLIT, help="training split giving the majority answers")
    args = parser.parse_args(argv)
    majority = majority_answers(read_instances(args.train))
    print(
        "| samples | questions | efficacy | majority-answer efficacy | correct | of which majority answer "
        "| efficacy where the majority answer is wrong |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|")
    for path in args.samples:
        row = answer_prior(read_samples(path), majority)
        print(
            f"| {path} | {row['questions']} | {row['efficacy']:.3f} | {row['majority_answer_efficacy']:.3f} "
            f"| {row['correct']} | {row['correct_with_majority_answer']} | {_number(row['efficacy_where_prior_wrong'])} |"
        )


if __name__ == "__main__":
    main()
