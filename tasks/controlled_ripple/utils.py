"""Controlled RippleEdit for lm-eval: read instances, flatten them to one document per question.

An instance (official format) holds `text`, the fact f, and `questions`, each with
`alias_question` (multi-hop through the fake entity: efficacy), `unalias_question` (the same
relation asked of the real entity: specificity) and `answer`. ripplebench's files add `id`,
`subject_type` ("person"/"company"), `atomic_facts` and, per question, `answer_aliases`,
`entity_id` and `relation_id` (see data/README.md). Reading and checking instances is
`ripplebench.harness.data.controlled_ripple_io`'s job.

Each question becomes two documents, efficacy then specificity, both carrying the edit, so
`--limit` keeps pairs together and the `editing` model can group documents by edit.

Multi-edit tasks (`controlled_ripple_<split>_multi10`, `_multi20`; paper section 6, Table 3)
shuffle the split's instances with `random.Random(group_seed)` (seed 0) and cut the shuffled
list into consecutive groups of `group_size`; the last group holds the remainder and is smaller
(350 / 20 leaves one group of 10). Every document of a group carries all of its edits in
`edits`, so the `editing` model applies them together and asks every question after all of
them; `edit_id` stays the document's own instance (the pairing key of `ripplebench compare`),
and `group_id`, `position` (1-based place of its own fact among the group's edits) and
`group_size` record the membership. Groups come one after the other, so `--limit N` takes
whole groups when N is a sum of their sizes; inside a group, documents go round-robin over the
facts (first question of fact 1, of fact 2, ..., then every fact's second question), so a
`--limit` that cuts a group still asks about every position: the first 2 x group_size documents
of a group ask one question (efficacy and specificity) of each fact.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ripplebench.harness.data.controlled_ripple_io import read_jsonl
from ripplebench.harness.llm_score import JudgeFilter, llm_metrics, use_task_metadata  # noqa: F401 (for the YAML)
from ripplebench.harness.metrics import exact_match

DATA_DIR = Path(__file__).parent / "data"
# task split -> generated file (`ripplebench data controlled-ripple generate` writes them)
SPLITS = {
    "id": "test_id.jsonl",
    "ood_entity": "test_ood_entity.jsonl",
    "ood_relation": "test_ood_relation.jsonl",
    "ood_both": "test_ood_both.jsonl",
    "val": "validation.jsonl",
}
SAMPLE_SPLITS = ("id", "ood_entity", "ood_relation", "ood_both")
GROUP_SEED = 0  # the multi-edit tasks' grouping seed
EDIT_FIELDS = ("edit_id", "fact", "subject_type", "atomic_facts")


def split_file(split: str) -> Path:
    """The generated file of a task split."""
    if split not in SPLITS:
        raise ValueError(f"Unknown Controlled RippleEdit split '{split}'. Valid: {', '.join(SPLITS)}.")
    return DATA_DIR / SPLITS[split]


def sample_file(split: str) -> Path:
    """The small hand-written sample of a test split (kept for quick tests)."""
    if split not in SAMPLE_SPLITS:
        raise ValueError(f"No sample for split '{split}'. Valid: {', '.join(SAMPLE_SPLITS)}.")
    return DATA_DIR / f"sample_{split}.jsonl"


def documents(instance: dict[str, Any], edit_id: str) -> list[dict[str, Any]]:
    """The efficacy and specificity documents of one instance."""
    edit = {
        "edit_id": edit_id,
        "fact": instance["text"],
        "subject_type": instance.get("subject_type", ""),
        "atomic_facts": instance.get("atomic_facts", []),
    }
    docs = []
    for number, question in enumerate(instance["questions"]):
        answers = [question["answer"], *question.get("answer_aliases", [])]
        ids = {"entity_id": question.get("entity_id", ""), "relation_id": question.get("relation_id", "")}
        for kind, key in (("efficacy", "alias_question"), ("specificity", "unalias_question")):
            docs.append(
                {**edit, **ids, "question_id": number, "kind": kind, "question": question[key], "answers": answers}
            )
    return docs


def read_instances(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """(edit id, instance) pairs of a JSON-lines file; an instance without `id` is named by file
    and line. A bad row is named by file, line, field."""
    path = Path(path)
    return [
        (str(instance.get("id") or f"{path.stem}-{number}"), instance)
        for number, instance in enumerate(read_jsonl(path), start=1)
    ]


def read_documents(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file of instances and flatten it; a bad row is named by file, line, field."""
    return [doc for edit_id, instance in read_instances(path) for doc in documents(instance, edit_id)]


def group_instances(instances: list[Any], group_size: int, seed: int = GROUP_SEED) -> list[list[Any]]:
    """Shuffle `instances` with `random.Random(seed)` and cut them into consecutive groups of
    `group_size`; the last group holds the remainder (smaller, never dropped)."""
    if group_size < 1:
        raise ValueError(f"group_size must be a positive number of edits, not {group_size}.")
    order = list(instances)
    random.Random(seed).shuffle(order)
    return [order[start : start + group_size] for start in range(0, len(order), group_size)]


def group_documents(group: list[tuple[str, dict[str, Any]]], group_id: str) -> list[dict[str, Any]]:
    """The documents of one edit group: every question of every member, each document carrying
    all the group's edits, ordered round-robin over the members (see the module docstring)."""
    per_member = [documents(instance, edit_id) for edit_id, instance in group]
    edits = [{field: docs[0][field] for field in EDIT_FIELDS} for docs in per_member]
    membership = {"group_id": group_id, "group_size": len(group)}
    ordered = []
    for start in range(0, max(len(docs) for docs in per_member), 2):  # one (efficacy, specificity) pair
        for position, docs in enumerate(per_member, start=1):
            for doc in docs[start : start + 2]:
                question = {key: value for key, value in doc.items() if key not in EDIT_FIELDS}
                ordered.append({"edit_id": doc["edit_id"], **membership, "position": position, **question, "edits": edits})
    return ordered


def read_group_documents(path: str | Path, group_size: int, seed: int = GROUP_SEED) -> list[dict[str, Any]]:
    """A file's instances grouped (`group_instances`) and flattened, group after group."""
    groups = group_instances(read_instances(path), group_size, seed)
    return [doc for number, group in enumerate(groups, start=1) for doc in group_documents(group, f"g{number:03d}")]


def _existing_split_file(split: str) -> Path:
    path = split_file(split)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: generate the splits with `ripplebench data controlled-ripple generate` "
            "from the repository root, then `make install`."
        )
    return path


def load_split(split: str, **metadata: Any) -> dict[str, Any]:
    """lm-eval `custom_dataset` hook: the split's documents as a `test` dataset."""
    import datasets

    use_task_metadata(metadata)
    return {"test": datasets.Dataset.from_list(read_documents(_existing_split_file(split)))}


def load_group_split(split: str, group_size: int, group_seed: int = GROUP_SEED, **metadata: Any) -> dict[str, Any]:
    """lm-eval `custom_dataset` hook of the multi-edit tasks: the split's documents in edit groups."""
    import datasets

    use_task_metadata(metadata)
    docs = read_group_documents(_existing_split_file(split), int(group_size), int(group_seed))
    return {"test": datasets.Dataset.from_list(docs)}


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """Score one answer: reported under `efficacy` or `specificity` by the document's kind,
    and under `llm_efficacy` / `llm_specificity` when the judge scored it. An efficacy document
    of a multi-edit group also reports `efficacy_pos<PP>`, PP its fact's position in the group, two
    digits so that lm-eval's alphabetical table lists them in order (exact match only)."""
    score = exact_match(doc["question"], results[0], doc["answers"])
    metrics = {doc["kind"]: score}
    by_position = {f"efficacy_pos{doc['position']:02d}": score} if doc["kind"] == "efficacy" and "position" in doc else {}
    return {**metrics, **by_position, **llm_metrics(metrics, results[0])}
