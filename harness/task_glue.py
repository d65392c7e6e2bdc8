"""The lm-eval glue every ripplebench task shares: its dataset hook and its answer scoring.

A task's `utils.py` names its documents and its metrics; this module turns the documents into
the `test` dataset lm-eval asks for (after taking the judge settings of the task's metadata)
and scores an answer by exact match, with an `llm_` twin of each metric when the judge scored it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

from ripplebench.harness.documents import Document, question_and_answers
from ripplebench.harness.llm_score import llm_metrics, use_task_metadata
from ripplebench.harness.metrics import exact_match


def task_dataset(read_documents: Callable[[], Sequence[Document]], metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Body of an lm-eval `custom_dataset` hook: check the judge settings in the task's metadata
    (before any generation), then the documents as a `test` dataset."""
    import datasets

    use_task_metadata(metadata)
    return {"test": datasets.Dataset.from_list(list(read_documents()))}


def score_answer(
    doc: Mapping[str, Any], results: Sequence[str], metrics: Iterable[str], em_only: Iterable[str] = ()
) -> dict[str, float]:
    """The answer's exact match under each of `metrics` and `em_only`, plus `llm_<metric>` for
    each of `metrics` when the judge scored the answer."""
    question, answers = question_and_answers(doc)
    score = exact_match(question, results[0], answers)
    scored = dict.fromkeys(metrics, score)
    return {**scored, **dict.fromkeys(em_only, score), **llm_metrics(scored, results[0])}
