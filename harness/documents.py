"""The task document contract: what a ripplebench lm-eval document holds, its builders and readers.

A document is one question asked after one or more edits. It carries its edit's record
(`edit_id`, `fact`, `subject_type`, `atomic_facts`), or, in a multi-edit task, all of its group's
records in `edits` plus `group_id`, `position` (1-based place of its own fact in the group) and
`group_size`; its question (`question`) and the valid answers (`answers`); and its dataset's
labels: Controlled RippleEdit's `kind` (efficacy/specificity), `question_id`, `entity_id` and
`relation_id`; RippleEdit's `subset`, `type` (LG, CI, CII, SA, RS, FN), `category`
(efficacy/specificity) and `verbatim`.

The builders make the documents of both tasks; the readers give what the engine (the edits),
`ripplebench compare` (the pairing key), the judge filter and the leaderboards read from them.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence, TypedDict

from ripplebench.editors.base import AtomicFact, Edit
from ripplebench.harness.data.rippleedit.records import RippleEdit

QUESTION_FIELD = "question"
ANSWERS_FIELD = "answers"
KIND_FIELD = "kind"  # Controlled RippleEdit: which metric the document's answer counts for
RELATION_FIELD = "relation_id"
EFFICACY, SPECIFICITY = "efficacy", "specificity"
# How a sample is recognised across runs (`ripplebench compare`); multi-edit documents add their group.
PAIRING_FIELDS = ("edit_id", "question_id", KIND_FIELD)
GROUP_FIELD = "group_id"  # multi-edit documents: the edit group the question was asked under


class EditRecord(TypedDict):
    """One edit as a document carries it; `atomic_facts` are {prompt, target, subject} triples."""

    edit_id: str
    fact: str
    subject_type: str
    atomic_facts: list[dict[str, str]]


EDIT_FIELDS = tuple(EditRecord.__annotations__)


class Question(TypedDict):
    """The question every document asks, with its valid answers (the first is canonical)."""

    question: str
    answers: list[str]


class ControlledRippleQuestion(Question):
    """A Controlled RippleEdit question: asked through the story (efficacy) or directly (specificity)."""

    kind: str
    question_id: int
    entity_id: str
    relation_id: str


class ControlledRippleDocument(EditRecord, ControlledRippleQuestion):
    """A Controlled RippleEdit document: one edit and one of its questions."""


class GroupDocument(ControlledRippleQuestion):
    """A multi-edit document: one question about its own instance, asked after all its group's edits."""

    edit_id: str
    group_id: str
    group_size: int
    position: int
    edits: list[EditRecord]


class RippleEditDocument(EditRecord, Question):
    """A RippleEdit document: one edit and one of its labelled propagation questions."""

    subset: str
    type: str
    category: str
    verbatim: bool


Document = ControlledRippleDocument | GroupDocument | RippleEditDocument


def controlled_ripple_documents(instance: Mapping[str, Any], edit_id: str) -> list[ControlledRippleDocument]:
    """The efficacy and specificity documents of one Controlled RippleEdit instance (official
    field names), efficacy then specificity for each question."""
    edit = EditRecord(
        edit_id=edit_id,
        fact=instance["text"],
        subject_type=instance.get("subject_type", ""),
        atomic_facts=instance.get("atomic_facts", []),
    )
    docs = []
    for number, question in enumerate(instance["questions"]):
        answers = [question["answer"], *question.get("answer_aliases", [])]
        ids = {"entity_id": question.get("entity_id", ""), RELATION_FIELD: question.get(RELATION_FIELD, "")}
        for kind, key in ((EFFICACY, "alias_question"), (SPECIFICITY, "unalias_question")):
            docs.append(
                {
                    **edit,
                    **ids,
                    "question_id": number,
                    KIND_FIELD: kind,
                    QUESTION_FIELD: question[key],
                    ANSWERS_FIELD: answers,
                }
            )
    return docs  # type: ignore[return-value]


def group_documents(group: Sequence[tuple[str, Mapping[str, Any]]], group_id: str) -> list[GroupDocument]:
    """The documents of one edit group of (edit id, instance) pairs: every question of every
    member, each document carrying all the group's edits, ordered round-robin over the members
    (first question of member 1, of member 2, ..., then every member's second question)."""
    per_member = [controlled_ripple_documents(instance, edit_id) for edit_id, instance in group]
    edits = [{field: docs[0][field] for field in EDIT_FIELDS} for docs in per_member]
    membership = {GROUP_FIELD: group_id, "group_size": len(group)}
    ordered = []
    for start in range(0, max(len(docs) for docs in per_member), 2):  # one (efficacy, specificity) pair
        for position, docs in enumerate(per_member, start=1):
            for doc in docs[start : start + 2]:
                question = {key: value for key, value in doc.items() if key not in EDIT_FIELDS}
                ordered.append(
                    {"edit_id": doc["edit_id"], **membership, "position": position, **question, "edits": edits}
                )
    return ordered  # type: ignore[return-value]


def rippleedit_documents(edit: RippleEdit) -> list[RippleEditDocument]:
    """The documents of one RippleEdit edit: one per kept question, with its labels."""
    record = {
        **EditRecord(
            edit_id=edit.edit_id,
            fact=edit.fact,
            subject_type="",
            atomic_facts=[dict(fact) for fact in edit.atomic_facts],
        ),
        "subset": edit.subset,
    }
    return [
        {
            **record,
            QUESTION_FIELD: query.prompt,
            ANSWERS_FIELD: list(query.answers),
            "type": query.type,
            "category": query.category,
            "verbatim": query.verbatim,
        }
        for query in edit.queries
    ]  # type: ignore[misc]


def edit_from_record(record: Mapping[str, Any]) -> Edit:
    """Build an Edit from a document's edit fields (`edit_id`, `fact`, ...)."""
    atomic = tuple(
        AtomicFact(item["prompt"], item["target"], item["subject"]) for item in record.get("atomic_facts") or ()
    )
    return Edit(
        id=str(record["edit_id"]),
        fact=record["fact"],
        atomic_facts=atomic,
        subject_type=record.get("subject_type") or "",
    )


def edits_from_doc(doc: Mapping[str, Any], where: str) -> tuple[Edit, ...]:
    """The edits a task document carries: one (`edit_id`, `fact`) or several (`edits`).

    `where` names the document in the error raised when it carries none.
    """
    records = doc.get("edits") if isinstance(doc, Mapping) and "edits" in doc else [doc]
    edits = []
    for record in records or ():
        if not isinstance(record, Mapping) or not record.get("edit_id") or not str(record.get("fact") or "").strip():
            raise ValueError(
                f"{where} carries no edit: the editing model needs 'edit_id' and a non-empty "
                "'fact' (or a list 'edits' of such records). Only ripplebench tasks provide them."
            )
        edits.append(edit_from_record(record))
    if not edits:
        raise ValueError(f"{where} has an empty 'edits' list.")
    return tuple(edits)


def sample_key(record: Mapping[str, Any]) -> tuple:
    """How an lm-eval sample is recognised across runs: its document's pairing fields (plus its
    group in multi-edit tasks) when it has them, else lm-eval's doc_id."""
    doc = record.get("doc") or {}
    if all(name in doc for name in PAIRING_FIELDS):
        group = (doc[GROUP_FIELD],) if GROUP_FIELD in doc else ()
        return tuple(doc[name] for name in PAIRING_FIELDS) + group
    return ("doc_id", record["doc_id"])


def question_and_answers(doc: Mapping[str, Any]) -> tuple[str, list[str]]:
    """A document's question and its valid answers (the first canonical)."""
    return doc[QUESTION_FIELD], doc[ANSWERS_FIELD]
