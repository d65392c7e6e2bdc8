"""RippleEdit for lm-eval: one document per propagation question, scored by the paper's EM.

The data is prepared once with `ripplebench data rippleedit` (see harness/data/rippleedit.py).
The tasks read it from, in order: lm_eval `--metadata '{"data_dir": "FOLDER"}'`, the
environment variable RIPPLEBENCH_RIPPLEEDIT_DIR, or the ripplebench cache
(`$RIPPLEBENCH_CACHE/rippleedit`, default `~/.cache/ripplebench/rippleedit`).

Scoring is ripplebench's exact match (harness/metrics.py), case-sensitive as in the paper's code.

Every document carries its edit (`edit_id`, `fact`, `atomic_facts`), so the `editing` model
applies each edit once for all of its questions. Documents of one edit are consecutive.
"""

from __future__ import annotations

from typing import Any

from ripplebench.harness.data.rippleedit import RippleEdit, load_split as load_edits
from ripplebench.harness.llm_score import JudgeFilter, llm_metrics, use_task_metadata  # noqa: F401 (for the YAML)
from ripplebench.harness.metrics import exact_match


def documents(edit: RippleEdit) -> list[dict[str, Any]]:
    """The documents of one edit: one per kept question, with its labels."""
    record = {
        "edit_id": edit.edit_id,
        "fact": edit.fact,
        "subject_type": "",
        "atomic_facts": [dict(fact) for fact in edit.atomic_facts],
        "subset": edit.subset,
    }
    return [
        {
            **record,
            "question": query.prompt,
            "answers": list(query.answers),
            "type": query.type,
            "category": query.category,
            "verbatim": query.verbatim,
        }
        for query in edit.queries
    ]


def load_split(split: str, data_dir: str | None = None, **metadata: Any) -> dict[str, Any]:
    """lm-eval `custom_dataset` hook: a prepared split's questions as a `test` dataset."""
    import datasets

    use_task_metadata(metadata)
    docs = [doc for edit in load_edits(split, data_dir) for doc in documents(edit)]
    return {"test": datasets.Dataset.from_list(docs)}


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """Score one answer under its category, its verbatim stratum and its propagation type
    (exact match, and LLM-Score as llm_<metric> when the judge scored it)."""
    score = exact_match(doc["question"], results[0], doc["answers"])
    stratum = "verbatim" if doc["verbatim"] else "nonverbatim"
    metrics = {doc["category"]: score, f"{doc['category']}_{stratum}": score, doc["type"]: score}
    return {**metrics, **llm_metrics(metrics, results[0])}
