"""Controlled RippleEdit for lm-eval: read instances, flatten them to one document per question.

An instance (official format) holds `text`, the fact f, and `questions`, each with
`alias_question` (multi-hop through the fake entity: efficacy), `unalias_question` (the same
relation asked of the real entity: specificity) and `answer`. ripplebench's files may add
`id`, `subject_type` ("person"/"company"), `answer_aliases` and `atomic_facts`.

Each question becomes two documents, efficacy then specificity, both carrying the edit, so
`--limit` keeps pairs together and the `editing` model can group documents by edit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ripplebench.harness.llm_score import JudgeFilter, llm_metrics, use_task_metadata  # noqa: F401 (for the YAML)
from ripplebench.harness.metrics import exact_match

DATA_DIR = Path(__file__).parent / "data"
SPLITS = ("id", "ood_entity", "ood_relation", "ood_both")
QUESTION_FIELDS = ("alias_question", "unalias_question", "answer")


def split_file(split: str) -> Path:
    """The committed sample file of a split."""
    if split not in SPLITS:
        raise ValueError(f"Unknown Controlled RippleEdit split '{split}'. Valid: {', '.join(SPLITS)}.")
    return DATA_DIR / f"sample_{split}.jsonl"


def _check_instance(instance: Any, where: str) -> None:
    if not isinstance(instance, dict) or not str(instance.get("text") or "").strip():
        raise ValueError(f"{where}: instance has no fact ('text' is missing or empty).")
    questions = instance.get("questions")
    if not isinstance(questions, list) or not questions:
        raise ValueError(f"{where}: instance has no questions ('questions' is missing or empty).")
    for number, question in enumerate(questions):
        missing = [key for key in QUESTION_FIELDS if not str(question.get(key) or "").strip()]
        if missing:
            raise ValueError(f"{where}: question {number} lacks {', '.join(missing)}.")


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
        for kind, key in (("efficacy", "alias_question"), ("specificity", "unalias_question")):
            docs.append({**edit, "question_id": number, "kind": kind, "question": question[key], "answers": answers})
    return docs


def read_documents(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file of instances and flatten it, naming the line of any bad instance."""
    path = Path(path)
    docs = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                instance = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{where}: not valid JSON ({error.msg}).") from None
            _check_instance(instance, where)
            docs.extend(documents(instance, str(instance.get("id") or f"{path.stem}-{line_number}")))
    return docs


def load_split(split: str, **metadata: Any) -> dict[str, Any]:
    """lm-eval `custom_dataset` hook: the split's documents as a `test` dataset."""
    import datasets

    use_task_metadata(metadata)
    return {"test": datasets.Dataset.from_list(read_documents(split_file(split)))}


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """Score one answer: reported under `efficacy` or `specificity` by the document's kind,
    and under `llm_efficacy` / `llm_specificity` when the judge scored it."""
    metrics = {doc["kind"]: exact_match(doc["question"], results[0], doc["answers"])}
    return {**metrics, **llm_metrics(metrics, results[0])}
