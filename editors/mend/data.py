"""Meta-training data: Controlled RippleEdit instances read from JSON lines, and locality inputs.

An instance (official format) has `text` (the fact f) and `questions`, each with
`alias_question` (propagation question), `unalias_question` (the same relation asked of the
real entity) and `answer`. ripplebench adds `id`, `subject_type` and `atomic_facts`
[{prompt, target, subject, paraphrase?}], which MEND's `sft` inner loss and `paraphrase`
outer loss need.

Locality inputs. MEND and PropMEND use Natural Questions; offline we cannot download it, so
the default (`locality: specificity`) draws specificity questions (`unalias_question` with
its answer) of *other* training instances. This is a deviation from the paper: those
questions are about real entities unrelated to the edited fake entity, as NQ questions are,
but they share the dataset's relations. Give a JSON-lines file of {question, answer}
(e.g. NQ) as `locality` to use the paper's setting.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from ripplebench.core.io import iter_jsonl
from ripplebench.editors.base import AtomicFact, Edit


@dataclass(frozen=True)
class QA:
    question: str
    answer: str
    aliases: tuple[str, ...] = ()  # other valid answers, for exact-match scoring


@dataclass(frozen=True)
class Instance:
    """One training edit: the Edit an editor receives, and its outer-loop targets."""

    edit: Edit
    propagation: tuple[QA, ...]  # alias questions: the PropMEND outer loss
    specificity: tuple[QA, ...]  # unalias questions: locality inputs for other instances
    paraphrases: tuple[QA, ...]  # (paraphrased prompt, target) per atomic fact: the MEND outer loss


def _read_jsonl(path: str | Path) -> list[tuple[str, dict]]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Data file '{path}' does not exist.")
    records = list(iter_jsonl(path))
    if not records:
        raise ValueError(f"Data file '{path}' holds no instances.")
    return records


def _require(record: dict, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object.")
    missing = [key for key in keys if not str(record.get(key) or "").strip()]
    if missing:
        raise ValueError(f"{where}: field(s) {', '.join(missing)} missing or empty.")


def instance_from_record(record: dict, where: str) -> Instance:
    """Validate one Controlled RippleEdit record and build its Instance."""
    if not isinstance(record, dict) or not isinstance(record.get("questions"), list) or not record["questions"]:
        raise ValueError(f"{where}: instance has no questions (field 'questions' is missing or empty).")
    _require(record, ("text",), where)
    for number, question in enumerate(record["questions"]):
        _require(question, ("alias_question", "unalias_question", "answer"), f"{where} question {number}")
    atomic = []
    for number, item in enumerate(record.get("atomic_facts") or ()):
        _require(item, ("prompt", "target", "subject"), f"{where} atomic fact {number}")
        atomic.append(item)
    edit = Edit(
        id=str(record.get("id") or where),
        fact=record["text"],
        atomic_facts=tuple(AtomicFact(a["prompt"], a["target"], a["subject"]) for a in atomic),
        subject_type=record.get("subject_type") or "",
    )
    questions = record["questions"]
    return Instance(
        edit=edit,
        propagation=tuple(
            QA(q["alias_question"], str(q["answer"]), tuple(q.get("answer_aliases") or ())) for q in questions
        ),
        specificity=tuple(
            QA(q["unalias_question"], str(q["answer"]), tuple(q.get("answer_aliases") or ())) for q in questions
        ),
        # Without a paraphrase the atomic prompt itself is the outer input (MEND's x' = x).
        paraphrases=tuple(QA(a.get("paraphrase") or a["prompt"], a["target"]) for a in atomic),
    )


def read_instances(path: str | Path) -> list[Instance]:
    """All instances of a JSON-lines file (gzipped if it ends in .gz), naming any malformed line."""
    return [instance_from_record(record, where) for where, record in _read_jsonl(path)]


class LocalityPool:
    """Unrelated (question, answer) pairs for the locality loss."""

    def __init__(self, source: str, instances: list[Instance]) -> None:
        if source == "specificity":
            self.pairs = [(i, qa) for i, instance in enumerate(instances) for qa in instance.specificity]
        else:
            self.pairs = [(-1, QA(r["question"], str(r["answer"]))) for _, r in _read_jsonl(source)]

    def sample(self, rng: random.Random, count: int, exclude: set[int]) -> list[QA]:
        """`count` pairs, none taken from the instances in `exclude` (the ones being edited)."""
        chosen: list[QA] = []
        for _ in range(100 * count):
            if len(chosen) == count:
                break
            owner, qa = rng.choice(self.pairs)
            if owner not in exclude:
                chosen.append(qa)
        if len(chosen) < count:
            raise ValueError("Not enough locality questions outside the edited instances; add more data.")
        return chosen
