"""RippleEdit for lm-eval: one document per propagation question, scored by the paper's EM.

The data is prepared once with `ripplebench data rippleedit` (see harness/data/rippleedit/).
The tasks read it from, in order: lm_eval `--metadata '{"data_dir": "FOLDER"}'`, the
environment variable RIPPLEBENCH_RIPPLEEDIT_DIR, or the ripplebench cache
(`$RIPPLEBENCH_CACHE/rippleedit`, default `~/.cache/ripplebench/rippleedit`).

Scoring is ripplebench's exact match (harness/metrics.py), case-sensitive as in the paper's code.

Every document carries its edit (`edit_id`, `fact`, `atomic_facts`), so the `editing` model
applies each edit once for all of its questions. Documents of one edit are consecutive.
"""

from __future__ import annotations

from typing import Any

from ripplebench.harness.data.rippleedit.read import load_split as load_edits
from ripplebench.harness.documents import rippleedit_documents
from ripplebench.harness.llm_score import JudgeFilter  # noqa: F401 (for the YAML)
from ripplebench.harness.task_glue import score_answer, task_dataset


def load_split(split: str, data_dir: str | None = None, **metadata: Any) -> dict[str, Any]:
    """lm-eval `custom_dataset` hook: a prepared split's questions as a `test` dataset."""
    return task_dataset(
        lambda: [doc for edit in load_edits(split, data_dir) for doc in rippleedit_documents(edit)], metadata
    )


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """Score one answer under its category, its verbatim stratum and its propagation type
    (exact match, and LLM-Score as llm_<metric> when the judge scored it)."""
    stratum = "verbatim" if doc["verbatim"] else "nonverbatim"
    return score_answer(doc, results, [doc["category"], f"{doc['category']}_{stratum}", doc["type"]])
