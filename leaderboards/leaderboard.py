"""The leaderboard's tables, laid out as the PropMEND paper's: rows are editors, columns task metrics.

- Table 1, RippleEdit (`ripple_edit*`): efficacy / specificity x verbatim / non-verbatim.
- Table 2, Controlled RippleEdit: ID / OOD entity / OOD relation / OOD both x efficacy /
  specificity, and per split the share of correct efficacy answers that are the relation's
  majority answer (leaderboards/answer_prior.py).
- Table 3, multi-edit (`controlled_ripple_<split>_multi<N>`): per split, single vs N edits.
- Any other task: a table of the metrics its samples report.
Each score table comes as EM and, where the judge scored the runs, as LLM-Score (`llm_*`). Each
model gets its own tables, and each table an efficiency table of the runs behind it.

A cell is the mean of the samples that report the metric, its standard error and n. Per column
the best value (as displayed, to 0.1 points) is ranked 1, the second 2; a row other than the
baseline gets the paired bootstrap's p against the baseline row (harness/significance.py).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ripplebench.harness.data.controlled_ripple.read import read_instances
from ripplebench.harness.data.controlled_ripple.splits import TASK_PREFIX, TEST_TASK_SPLITS, task_name
from ripplebench.harness.significance import metric_value, paired_bootstrap
from ripplebench.leaderboards.answer_prior import TRAIN_SPLIT, answer_prior, efficacy_samples, majority_answers
from ripplebench.leaderboards.collect import BASE_EDITOR, Entry, collect

ALPHA = 0.05
MULTI_TASK = re.compile(rf"{TASK_PREFIX}(?P<split>[a-z_]+?)_multi(?P<edits>\d+)$")
SCORERS = {"EM": "", "LLM-Score": "llm_"}
EFFICIENCY = {  # edit_stats / config.ripplebench field -> (column label, unit)
    "edit_seconds_mean": ("edit s / group", "seconds"),
    "answer_seconds_mean": ("answer s / group", "seconds"),
    "revert_seconds_mean": ("revert s / group", "seconds"),
    "train_tokens_mean": ("train tokens / group", "count"),
    "tokens_vs_cpt_mean": ("#tokens vs CPT", "ratio"),
    "peak_rss_mb": ("peak RSS MB", "count"),
}
PRIOR_METRIC = "majority_answer_share"


@dataclass(frozen=True)
class Column:
    """One column: a task's metric, under a header group."""

    task: str
    metric: str
    group: str
    label: str
    unit: str = "score"  # score (0-1, shown in points), share, seconds, count, ratio
    ranked: bool = True  # bold / underline and significance apply


@dataclass
class Cell:
    mean: float
    stderr: float | None
    n: int
    rank: int | None = None  # 1 best, 2 second best in its column
    diff: float | None = None  # mean - the baseline's mean on the paired samples
    p: float | None = None  # paired bootstrap against the baseline

    def significant(self, alpha: float = ALPHA) -> bool:
        return self.p is not None and self.p < alpha


@dataclass
class Row:
    editor: str
    oracle: bool
    cells: list[Cell | None]


@dataclass
class Table:
    model: str
    title: str
    caption: str
    columns: list[Column]
    rows: list[Row]
    tasks: list[str]


@dataclass
class Leaderboard:
    baseline: str
    resamples: int
    seed: int
    alpha: float
    tables: list[Table] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)  # overall efficacy / specificity per run
    strata: list[dict[str, Any]] = field(default_factory=list)  # per-relation / per-type efficacy
    runs: list[dict[str, Any]] = field(default_factory=list)


def mean_cell(values: Sequence[float]) -> Cell | None:
    """Mean, standard error of the mean (sample standard deviation / sqrt(n), as lm-eval) and n."""
    n = len(values)
    if n == 0:
        return None
    mean = sum(values) / n
    stderr = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n) if n > 1 else None
    return Cell(mean, stderr, n)


def scores(entry: Entry, metric: str) -> dict[tuple, float]:
    """The entry's samples that report `metric`, by sample key."""
    values = {key: metric_value(record, metric) for key, record in entry.samples.items()}
    return {key: value for key, value in values.items() if value is not None}


def reported_metrics(entries: Iterable[Entry]) -> set[str]:
    return {metric for entry in entries for record in entry.samples.values() for metric in record.get("metrics", [])}


@dataclass(frozen=True)
class Plan:
    """A table before its cells: tasks (task -> header group) and metrics (metric -> label)."""

    title: str
    caption: str
    tasks: dict[str, str]
    metrics: dict[str, str]
    prior: bool = False  # add the answer-prior share after each split (Controlled RippleEdit, EM)

    def columns(self, prefix: str, reported: dict[str, set[str]]) -> list[Column]:
        """The columns of one scorer (metric prefix) that some run of the task reports."""
        columns = []
        for task, group in self.tasks.items():
            for metric, label in self.metrics.items():
                if prefix + metric in reported[task]:
                    columns.append(Column(task, prefix + metric, group, label))
            if self.prior and not prefix and "efficacy" in reported[task]:
                columns.append(Column(task, PRIOR_METRIC, group, "prior share", "share", ranked=False))
        return columns


def plans(tasks: Sequence[str], reported: dict[str, set[str]]) -> list[Plan]:
    """The tables of one model's tasks, as the paper lays them out."""
    found: list[Plan] = []
    strata = {
        f"{category}_{stratum}": f"{category[:4].title()}. {label}"
        for category in ("efficacy", "specificity")
        for stratum, label in (("verbatim", "Verbatim"), ("nonverbatim", "Non-verbatim"))
    }
    for task in (t for t in tasks if t.startswith("ripple_edit")):
        found.append(
            Plan(
                f"Table 1 · RippleEdit ({task})",
                "efficacy / specificity x verbatim / non-verbatim",
                {task: task},
                strata,
            )
        )
    effi_spec = {"efficacy": "Effi.", "specificity": "Spec."}
    single = {task_name(split): name for split, name in TEST_TASK_SPLITS.items()}
    single = {task: name for task, name in single.items() if task in tasks}
    if single:
        found.append(
            Plan(
                "Table 2 · Controlled RippleEdit, single edit",
                "efficacy / specificity per split",
                single,
                effi_spec,
                prior=True,
            )
        )
    multi: dict[str, dict[int, str]] = {}
    for task in tasks:
        match = MULTI_TASK.match(task)
        if match:
            multi.setdefault(match["split"], {})[int(match["edits"])] = task
    for split, by_edits in multi.items():
        columns = {task_name(split): "single"} if task_name(split) in tasks else {}
        columns.update({by_edits[n]: f"{n} edits" for n in sorted(by_edits)})
        found.append(
            Plan(
                f"Table 3 · Controlled RippleEdit, multi-edit, {TEST_TASK_SPLITS.get(split, split)}",
                "single vs several edits at once",
                columns,
                effi_spec,
            )
        )
    placed = {task for plan in found for task in plan.tasks}
    for task in (t for t in tasks if t not in placed):
        metrics = {m: m for m in sorted(reported[task]) if not m.startswith(SCORERS["LLM-Score"])}
        found.append(Plan(f"Other · {task}", "every metric the task reports", {task: task}, metrics))
    return found


def _rank(rows: list[Row], index: int) -> None:
    """Rank 1 on the best displayed value of a column, 2 on the second (ties share a rank)."""
    shown = sorted({round(100 * row.cells[index].mean, 1) for row in rows if row.cells[index]}, reverse=True)
    for row in rows:
        cell = row.cells[index]
        if cell is not None and round(100 * cell.mean, 1) in shown[:2]:
            cell.rank = shown.index(round(100 * cell.mean, 1)) + 1


def _test(cell: Cell, entry: Entry, base: Entry, metric: str, resamples: int, seed: int) -> None:
    ours, theirs = scores(entry, metric), scores(base, metric)
    paired = sorted(set(ours) & set(theirs), key=str)
    if paired:
        result = paired_bootstrap([ours[k] for k in paired], [theirs[k] for k in paired], resamples, seed)
        cell.diff, cell.p = result.diff, result.p


def _prior_cell(entry: Entry, majority: dict[str, str]) -> Cell | None:
    prior = answer_prior(efficacy_samples(entry.samples.values(), entry.source), majority)
    if not prior["correct"]:
        return None
    return Cell(prior["correct_with_majority_answer"] / prior["correct"], None, prior["correct"])


def score_table(
    model: str,
    title: str,
    caption: str,
    columns: list[Column],
    groups: dict[tuple[str, str], list[Entry]],
    editors: list[str],
    board: Leaderboard,
    majority: dict[str, str] | None,
) -> Table:
    """Cells of every editor that ran one of the table's tasks; ranks; tests against the baseline."""
    by_task = {task: {e.editor: e for e in groups[model, task]} for task in dict.fromkeys(c.task for c in columns)}
    rows = []
    for editor in (e for e in editors if any(e in entries for entries in by_task.values())):
        cells: list[Cell | None] = []
        for column in columns:
            entry = by_task[column.task].get(editor)
            if entry is None:
                cells.append(None)
                continue
            if column.metric == PRIOR_METRIC:
                cells.append(_prior_cell(entry, majority) if majority else None)
                continue
            cell = mean_cell(list(scores(entry, column.metric).values()))
            base = by_task[column.task].get(board.baseline)
            if cell is not None and base is not None and editor != board.baseline:
                _test(cell, entry, base, column.metric, board.resamples, board.seed)
            cells.append(cell)
        oracle = any(entries[editor].oracle for entries in by_task.values() if editor in entries)
        rows.append(Row(editor, oracle, cells))
    for index, column in enumerate(columns):
        if column.ranked:
            _rank(rows, index)
    missing = [task for task, entries in by_task.items() if board.baseline not in entries]
    if missing:
        caption += f"; no {board.baseline} run of {', '.join(missing)}, so no significance test there"
    return Table(model, title, caption, columns, rows, list(by_task))


def efficiency_table(
    model: str, title: str, tasks: list[str], groups: dict[tuple[str, str], list[Entry]], editors: list[str]
) -> Table | None:
    """Edit statistics of the runs behind a table: means over edit groups, peak RSS the highest."""
    columns = [Column("", key, "", label, unit, ranked=False) for key, (label, unit) in EFFICIENCY.items()]
    rows = []
    for editor in editors:
        runs = {e.results: e for task in tasks for e in groups[model, task] if e.editor == editor}
        if not runs:
            continue
        cells: list[Cell | None] = []
        for column in columns:
            have = [e for e in runs.values() if column.metric in e.stats]
            if not have:
                cells.append(None)
            elif column.metric == "peak_rss_mb":
                cells.append(Cell(max(e.stats["peak_rss_mb"] for e in have), None, len(have)))
            else:
                weights = [e.stats.get("edit_groups", 1) for e in have]
                total = sum(e.stats[column.metric] * w for e, w in zip(have, weights)) / sum(weights)
                cells.append(Cell(total, None, sum(weights)))
        if any(cells):
            rows.append(Row(editor, any(e.oracle for e in runs.values()), cells))
    caption = "means over edit groups of the runs behind the table (n: edit groups; for peak RSS: runs)"
    return Table(model, f"Efficiency · {title}", caption, columns, rows, tasks) if rows else None


def summary(model: str, task: str, entries: list[Entry]) -> list[dict[str, Any]]:
    """Each entry's overall efficacy and specificity (EM and LLM-Score), for the plots."""
    out = []
    for entry in entries:
        for prefix in SCORERS.values():
            for kind in ("efficacy", "specificity"):
                cell = mean_cell(list(scores(entry, prefix + kind).values()))
                if cell is not None:
                    out.append(
                        {
                            "model": model,
                            "task": task,
                            "editor": entry.editor,
                            "oracle": entry.oracle,
                            "metric": prefix + kind,
                            "mean": cell.mean,
                            "stderr": cell.stderr,
                            "n": cell.n,
                        }
                    )
    return out


def strata(model: str, task: str, entries: list[Entry]) -> list[dict[str, Any]]:
    """Efficacy per relation (Controlled RippleEdit `relation_id`) or propagation type (RippleEdit `type`)."""
    out = []
    for entry in entries:
        values: dict[str, list[float]] = {}
        for record in entry.samples.values():
            doc = record.get("doc") or {}
            stratum = doc.get("relation_id") or doc.get("type")
            value = metric_value(record, "efficacy")
            if stratum and value is not None and (doc.get("kind") or doc.get("category")) == "efficacy":
                values.setdefault(str(stratum), []).append(value)
        for stratum, found in sorted(values.items()):
            out.append(
                {
                    "model": model,
                    "task": task,
                    "editor": entry.editor,
                    "stratum": stratum,
                    "mean": sum(found) / len(found),
                    "n": len(found),
                }
            )
    return out


def _editor_order(entries: Iterable[Entry], baseline: str) -> list[str]:
    """The baseline first, then editors in the order their runs were given."""
    order = list(dict.fromkeys(entry.editor for entry in entries))
    return sorted(order, key=lambda editor: editor != baseline)


def _majority(groups: dict[tuple[str, str], list[Entry]], train: Path) -> dict[str, str] | None:
    """Majority answers of the training split, when a Controlled RippleEdit run carries relation ids."""
    controlled = {task_name(split) for split in TEST_TASK_SPLITS}
    needed = any(
        task in controlled and any("relation_id" in (r.get("doc") or {}) for r in e.samples.values())
        for (_, task), entries in groups.items()
        for e in entries
    )
    return majority_answers(read_instances(train)) if needed and train.is_file() else None


def build_leaderboard(
    paths: Iterable[str | Path],
    baseline: str = BASE_EDITOR,
    resamples: int = 10_000,
    seed: int = 0,
    train: Path = TRAIN_SPLIT,
) -> Leaderboard:
    """Read every run under `paths` and lay out the tables of each model."""
    groups = collect(paths)
    if not groups:
        raise ValueError("No runs found: pass lm-eval output folders or results_*.json files.")
    board = Leaderboard(baseline, resamples, seed, ALPHA)
    majority = _majority(groups, train)
    for model in dict.fromkeys(model for model, _ in groups):
        tasks = sorted(task for (owner, task) in groups if owner == model)
        reported = {task: reported_metrics(groups[model, task]) for task in tasks}
        editors = _editor_order((e for task in tasks for e in groups[model, task]), baseline)
        for plan in plans(tasks, reported):
            for scorer, prefix in SCORERS.items():
                columns = plan.columns(prefix, reported)
                if columns:
                    title = f"{plan.title} · {scorer}"
                    table = score_table(model, title, plan.caption, columns, groups, editors, board, majority)
                    board.tables.append(table)
            efficiency = efficiency_table(model, plan.title, list(plan.tasks), groups, editors)
            if efficiency is not None:
                board.tables.append(efficiency)
        for task in tasks:
            ordered = sorted(groups[model, task], key=lambda entry: editors.index(entry.editor))
            board.summary.extend(summary(model, task, ordered))
            board.strata.extend(strata(model, task, ordered))
    board.runs = [
        {
            "model": e.model,
            "editor": e.editor,
            "task": e.task,
            "limit": e.limit,
            "oracle": e.oracle,
            "results": str(e.results),
            "samples": str(e.source),
            "stats": e.stats,
        }
        for entries in groups.values()
        for e in entries
    ]
    return board
