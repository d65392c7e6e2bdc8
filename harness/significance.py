"""Paired bootstrap test between two lm-eval runs, per task, metric and stratum.

Samples are paired by task, filter and document: by the document's (edit_id, question_id, kind)
when it has them, else by lm-eval's doc_id. Documents of multi-edit tasks add their `group_id`
(their `edit_id` is still the question's own instance), so a sample is only paired with the
same question asked under the same group. Each metric a task reports per sample (efficacy,
specificity, llm_efficacy, a propagation-type stratum, ...) is tested on the samples where both
runs have it. The test resamples the paired differences with replacement; p is two-sided: the
share of resampled mean differences at least as far from the observed one as the observed one
is from zero (the bootstrap distribution shifted to the null hypothesis of no difference).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ripplebench.core.io import read_jsonl
from ripplebench.harness.documents import sample_key
from ripplebench.harness.runs import Run, load_run

CHUNK = 1000  # resamples drawn at once, to bound memory


@dataclass(frozen=True)
class PairedResult:
    """A paired comparison of run A against run B on one metric."""

    n: int
    mean_a: float
    mean_b: float
    diff: float  # mean(A) - mean(B)
    low: float  # confidence interval of diff
    high: float
    p: float


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], resamples: int = 10_000, seed: int = 0, alpha: float = 0.05
) -> PairedResult:
    """Paired bootstrap of mean(a) - mean(b): percentile CI at level 1 - alpha, two-sided p."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"Paired bootstrap needs two equally long, non-empty lists; got {len(a)} and {len(b)} values.")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}.")
    differences = a - b
    observed = differences.mean()
    rng = np.random.default_rng(seed)
    means = []
    for start in range(0, resamples, CHUNK):
        rows = min(CHUNK, resamples - start)
        means.append(differences[rng.integers(0, len(differences), size=(rows, len(differences)))].mean(axis=1))
    means = np.concatenate(means)
    extreme = np.count_nonzero(np.abs(means - observed) >= abs(observed) - 1e-12)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return PairedResult(
        len(a),
        float(a.mean()),
        float(b.mean()),
        float(observed),
        float(low),
        float(high),
        float((extreme + 1) / (resamples + 1)),
    )


def _samples(run: Run) -> dict[tuple, dict[str, Any]]:
    samples: dict[tuple, dict[str, Any]] = {}
    for task, path in run.samples.items():
        for record in read_jsonl(path):
            key = (task, record.get("filter", "none"), *sample_key(record))
            if key in samples:
                raise ValueError(f"{path}: two samples share the key {key}; they cannot be paired.")
            samples[key] = record
    return samples


def _describe(keys: Sequence[tuple], limit: int = 5) -> str:
    shown = ", ".join(str(key) for key in sorted(keys, key=str)[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def check_same_samples(a: dict[tuple, dict], b: dict[tuple, dict], names: tuple[str, str] = ("RUN_A", "RUN_B")) -> None:
    """Refuse runs whose samples differ, saying which samples (and which of the two `names`) differ."""
    only_a, only_b = sorted(set(a) - set(b), key=str), sorted(set(b) - set(a), key=str)
    changed = [key for key in set(a) & set(b) if a[key].get("doc_hash") != b[key].get("doc_hash")]
    problems = []
    if only_a:
        problems.append(f"{len(only_a)} samples only in {names[0]}: {_describe(only_a)}")
    if only_b:
        problems.append(f"{len(only_b)} samples only in {names[1]}: {_describe(only_b)}")
    if changed:
        problems.append(f"{len(changed)} samples whose documents differ: {_describe(changed)}")
    if problems:
        raise ValueError("The runs do not hold the same samples, so they cannot be paired:\n  " + "\n  ".join(problems))


def metric_value(record: dict[str, Any], metric: str) -> float | None:
    """A sample's score on `metric`; None where it has none (e.g. the judge could not score it)."""
    value = record.get(metric)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Comparison:
    """One row of `compare`: a task, filter and metric, with the test result (or why there is none)."""

    task: str
    filter: str
    metric: str
    result: PairedResult | None
    note: str = ""


def compare_runs(
    path_a: str | Path, path_b: str | Path, resamples: int = 10_000, seed: int = 0, alpha: float = 0.05
) -> list[Comparison]:
    """Paired bootstrap of run A against run B for each task, filter and metric."""
    a, b = _samples(load_run(path_a)), _samples(load_run(path_b))
    check_same_samples(a, b)
    groups: dict[tuple[str, str, str], list[tuple]] = {}
    for key in sorted(a, key=str):
        for metric in {*a[key].get("metrics", []), *b[key].get("metrics", [])}:
            groups.setdefault((key[0], key[1], metric), []).append(key)
    rows = []
    for (task, filter_key, metric), keys in sorted(groups.items()):
        pairs = [(metric_value(a[key], metric), metric_value(b[key], metric)) for key in keys]
        in_a, in_b = sum(x is not None for x, _ in pairs), sum(y is not None for _, y in pairs)
        paired = [(x, y) for x, y in pairs if x is not None and y is not None]
        if not paired:
            missing = "RUN_B" if in_a else "RUN_A"
            rows.append(
                Comparison(
                    task, filter_key, metric, None, f"not in {missing} (LLM-Score: `ripplebench judge {missing}`)"
                )
            )
            continue
        note = (
            ""
            if len(paired) == len(keys)
            else f"{len(keys) - len(paired)} unpaired (unscorable in A: {len(keys) - in_a}, in B: {len(keys) - in_b})"
        )
        result = paired_bootstrap([x for x, _ in paired], [y for _, y in paired], resamples, seed, alpha)
        rows.append(Comparison(task, filter_key, metric, result, note))
    return rows


def format_comparisons(rows: Sequence[Comparison], alpha: float = 0.05) -> str:
    """A Markdown table of `compare_runs` rows; `*` marks p < alpha."""
    level = f"{100 * (1 - alpha):g}% CI"
    lines = [f"|Task|Filter|Metric|n|A|B|A-B|{level}|p| |Note|", "|---|---|---|--:|--:|--:|--:|---|--:|---|---|"]
    for row in rows:
        r = row.result
        if r is None:
            lines.append(f"|{row.task}|{row.filter}|{row.metric}| | | | | | | |{row.note}|")
            continue
        mark = "*" if r.p < alpha else ""
        lines.append(
            f"|{row.task}|{row.filter}|{row.metric}|{r.n}|{r.mean_a:.4f}|{r.mean_b:.4f}|{r.diff:+.4f}|"
            f"[{r.low:+.4f}, {r.high:+.4f}]|{r.p:.4f}|{mark}|{row.note}|"
        )
    return "\n".join(lines)
