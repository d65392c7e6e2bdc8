"""Controlled RippleEdit for lm-eval: read instances, flatten them to one document per question.

An instance (official format) holds `text`, the fact f, and `questions`, each with
`alias_question` (multi-hop through the fake entity: efficacy), `unalias_question` (the same
relation asked of the real entity: specificity) and `answer`. ripplebench's files add `id`,
`subject_type` ("person"/"company"), `atomic_facts` and, per question, `answer_aliases`,
`entity_id` and `relation_id` (see data/README.md). Reading and checking instances is
`ripplebench.harness.data.controlled_ripple.read`'s job, the document fields are
`ripplebench.harness.documents`, the split names `ripplebench.harness.data.controlled_ripple.splits`.

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

from ripplebench.core.paths import CONTROLLED_RIPPLE_DATA_DIR
from ripplebench.harness.data.controlled_ripple.read import identified_instances
from ripplebench.harness.data.controlled_ripple.splits import TASK_SPLITS, TEST_TASK_SPLITS, split_path
from ripplebench.harness.documents import EFFICACY, KIND_FIELD, Document, controlled_ripple_documents, group_documents
from ripplebench.harness.llm_score import JudgeFilter  # noqa: F401 (for the YAML)
from ripplebench.harness.task_glue import score_answer, task_dataset

SAMPLE_SPLITS = tuple(TEST_TASK_SPLITS)  # the test splits with a small hand-written sample file
GROUP_SEED = 0  # the multi-edit tasks' grouping seed


def split_file(split: str) -> Path:
    """The generated file of a task split ("id", "ood_entity", ..., "val")."""
    if split not in TASK_SPLITS:
        raise ValueError(f"Unknown Controlled RippleEdit split '{split}'. Valid: {', '.join(TASK_SPLITS)}.")
    return split_path(CONTROLLED_RIPPLE_DATA_DIR, TASK_SPLITS[split])


def sample_file(split: str) -> Path:
    """The small hand-written sample of a test split (kept for quick tests)."""
    if split not in SAMPLE_SPLITS:
        raise ValueError(f"No sample for split '{split}'. Valid: {', '.join(SAMPLE_SPLITS)}.")
    return CONTROLLED_RIPPLE_DATA_DIR / f"sample_{split}.jsonl"


def read_documents(path: str | Path) -> list[Document]:
    """Read a JSON-lines file of instances and flatten it; a bad row is named by file, line, field."""
    return [
        doc
        for edit_id, instance in identified_instances(path)
        for doc in controlled_ripple_documents(instance, edit_id)
    ]


def group_instances(instances: list[Any], group_size: int, seed: int = GROUP_SEED) -> list[list[Any]]:
    """Shuffle `instances` with `random.Random(seed)` and cut them into consecutive groups of
    `group_size`; the last group holds the remainder (smaller, never dropped)."""
    if group_size < 1:
        raise ValueError(f"group_size must be a positive number of edits, not {group_size}.")
    order = list(instances)
    random.Random(seed).shuffle(order)
    return [order[start : start + group_size] for start in range(0, len(order), group_size)]


def read_group_documents(path: str | Path, group_size: int, seed: int = GROUP_SEED) -> list[Document]:
    """A file's instances grouped (`group_instances`) and flattened, group after group."""
    groups = group_instances(identified_instances(path), group_size, seed)
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
    return task_dataset(lambda: read_documents(_existing_split_file(split)), metadata)


def load_group_split(split: str, group_size: int, group_seed: int = GROUP_SEED, **metadata: Any) -> dict[str, Any]:
    """lm-eval `custom_dataset` hook of the multi-edit tasks: the split's documents in edit groups."""
    return task_dataset(
        lambda: read_group_documents(_existing_split_file(split), int(group_size), int(group_seed)), metadata
    )


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """Score one answer: reported under `efficacy` or `specificity` by the document's kind,
    and under `llm_efficacy` / `llm_specificity` when the judge scored it. An efficacy document
    of a multi-edit group also reports `efficacy_pos<PP>`, PP its fact's position in the group, two
    digits so that lm-eval's alphabetical table lists them in order (exact match only)."""
    by_position = [f"efficacy_pos{doc['position']:02d}"] if doc[KIND_FIELD] == EFFICACY and "position" in doc else []
    return score_answer(doc, results, [doc[KIND_FIELD]], em_only=by_position)
