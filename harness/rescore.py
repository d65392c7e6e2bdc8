"""LLM-Score after the fact: judge the answers in saved lm-eval sample logs (`ripplebench judge`).

Each record gets `llm_<metric>` next to each of its exact-match metrics, and the run's results
file the llm_* means and standard errors, computed as lm-eval computes them inside a run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ripplebench.core.io import read_jsonl, write_json, write_jsonl
from ripplebench.harness.documents import ANSWERS_FIELD, QUESTION_FIELD
from ripplebench.harness.judge import Judge, JudgeReport, JudgeSettings
from ripplebench.harness.llm_score import LLM_PREFIX, judge_item, llm_values
from ripplebench.harness.runs import Run, find_runs


def rescore(
    path: str | Path,
    settings: JudgeSettings,
    retry_unscorable: bool = False,
    question_field: str = QUESTION_FIELD,
    answers_field: str = ANSWERS_FIELD,
) -> tuple[list[Run], JudgeReport]:
    """Judge every answer in saved sample logs; write llm_* scores into them and their results file.

    Each record gets `llm_<metric>` for each of its exact-match metrics (files without metric
    names, such as the ones `JudgeFilter` saves on failure, get `llm_score`). The results file,
    when there is one, gets each llm_* metric's mean and standard error per task, computed as
    lm-eval computes them. Judgements come from the cache when they were made before.
    """
    runs = find_runs(path)
    logs = [
        (run, task, sample_path, read_jsonl(sample_path)) for run in runs for task, sample_path in run.samples.items()
    ]
    records = [record for *_, task_records in logs for record in task_records]
    for record in records:
        if not record.get("filtered_resps") or "doc" not in record:
            raise ValueError(
                f"A record (doc_id {record.get('doc_id')}) has no doc or filtered_resps; is this an lm-eval sample log?"
            )
    items = [
        judge_item(record["doc"], str(record["filtered_resps"][0]), question_field, answers_field) for record in records
    ]
    judge = Judge(settings)
    try:
        scores, report = judge.score(items, retry_unscorable=retry_unscorable)
    finally:
        judge.close()
    for record, score in zip(records, scores):
        _set_llm_metrics(record, score)
    for run, task, sample_path, task_records in logs:
        write_jsonl(sample_path, task_records)
        if run.results is not None:
            _update_results(run.results, task, task_records)
    return runs, report


def _set_llm_metrics(record: dict[str, Any], score: float | None) -> None:
    names = [name for name in record.get("metrics", []) if not name.startswith(LLM_PREFIX)] or ["score"]
    for name in names:
        record.pop(LLM_PREFIX + name, None)
    judged = llm_values(names, score)
    record.update(judged)
    record["metrics"] = [*names, *judged] if "metrics" in record else list(judged)


def _update_results(results_path: Path, task: str, records: list[dict[str, Any]]) -> None:
    from lm_eval.api.metrics import mean, mean_stderr

    results = json.loads(results_path.read_text(encoding="utf-8"))
    table = results.setdefault("results", {}).setdefault(task, {"alias": task})
    for key in [key for key in table if key.startswith(LLM_PREFIX)]:
        del table[key]
    values: dict[tuple[str, str], list[float]] = {}
    for record in records:
        for name in record.get("metrics", []):
            if name.startswith(LLM_PREFIX):
                values.setdefault((name, record.get("filter", "none")), []).append(record[name])
    for (name, filter_key), scores in sorted(values.items()):
        table[f"{name},{filter_key}"] = mean(scores)
        table[f"{name}_stderr,{filter_key}"] = mean_stderr(scores) if len(scores) > 1 else "N/A"
        results.setdefault("higher_is_better", {}).setdefault(task, {})[name] = True
    write_json(results_path, results)
