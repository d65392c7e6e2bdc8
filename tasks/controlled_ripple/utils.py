"""Controlled RippleEdit for lm-eval: read instances, flatten them to one document per question.

An instance (official format) holds `text`, the fact f, and `questions`, each with
`alias_question` (multi-hop through the fake entity: efficacy), `unalias_question` (the same
relation asked of the real entity: specificity) and `answer`. ripplebench's files add `id`,
`subject_type` ("person"/"company"), `atomic_facts` and, per question, `answer_aliases`,
`entity_id` and `relation_id` (see data/README.md). Reading and checking instances is
`ripplebench.harness.data.controlled_ripple_io`'s job.

Each question becomes two documents, efficacy then specificity, both carrying the edit, so
`--limit` keeps pairs together and the `editing` model can group documents by edit.
"""

from __future__ import annotations

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


def read_documents(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file of instances and flatten it; a bad row is named by file, line, field."""
    path = Path(path)
    docs = []
    for number, instance in enumerate(read_jsonl(path), start=1):
        docs.extend(documents(instance, str(instance.get("id") or f"{path.stem}-{number}")))
    return docs


def load_split(split: str, **metadata: Any) -> dict[str, Any]:
    """lm-eval `custom_dataset` hook: the split's documents as a `test` dataset."""
    import datasets

    use_task_metadata(metadata)
    path = split_file(split)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: generate the splits with `ripplebench data controlled-ripple generate` "
            "from the repository root, then `make install`."
        )
    return {"test": datasets.Dataset.from_list(read_documents(path))}


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """Score one answer: reported under `efficacy` or `specificity` by the document's kind,
    and under `llm_efficacy` / `llm_specificity` when the judge scored it."""
    metrics = {doc["kind"]: exact_match(doc["question"], results[0], doc["answers"])}
    return {**metrics, **llm_metrics(metrics, results[0])}
