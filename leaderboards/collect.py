"""Read lm-eval runs (results file + `--log_samples` logs) into one entry per run and task.

An entry knows which model and editor made it, under which `--limit`, the run's edit statistics
(results config.ripplebench, written by harness/lm_model.py) and its samples keyed as the paired
bootstrap pairs them. Plain `--model hf` runs count as editor `none` on their `pretrained` model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ripplebench.core.io import read_jsonl
from ripplebench.harness.documents import sample_key
from ripplebench.harness.runs import Run, find_runs
from ripplebench.harness.significance import check_same_samples

BASE_EDITOR = "none"


@dataclass
class Entry:
    """One task of one run."""

    model: str
    editor: str
    task: str
    limit: float | None
    results: Path
    source: Path  # the task's sample log
    oracle: bool = False  # the editor uses knowledge of the test data (edit_stats.oracle)
    stats: dict[str, Any] = field(default_factory=dict)  # edit_stats means and peak_rss_mb
    samples: dict[tuple, dict[str, Any]] = field(default_factory=dict)  # sample key -> record

    @property
    def label(self) -> str:
        return f"{self.source} (editor {self.editor})"


def _model_args(config: dict[str, Any]) -> dict[str, Any]:
    from lm_eval.utils import simple_parse_args_string

    args = config.get("model_args") or {}
    return simple_parse_args_string(args) if isinstance(args, str) else dict(args)


def editor_label(editor: str, model_args: dict[str, Any]) -> str:
    """The editor with the settings its run changed (`editor.<field>=...`, `editor_config=...`), so
    that two variants of one editor get two rows."""
    changed = [f"{key}={value}" for key, value in sorted(model_args.items()) if key.startswith("editor.")]
    if model_args.get("editor_config"):
        changed.insert(0, f"editor_config={model_args['editor_config']}")
    return f"{editor} ({', '.join(changed)})" if changed else editor


def who_ran(results: Path, config: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The model, editor and ripplebench record (empty for `--model hf`) of a results config."""
    record = config.get("ripplebench")
    if isinstance(record, dict) and record.get("model"):
        model = record["model"] + (f" ({record['gguf_file']})" if record.get("gguf_file") else "")
        return model, editor_label(str(record.get("editor") or BASE_EDITOR), _model_args(config)), record
    if config.get("model") == "hf" and _model_args(config).get("pretrained"):
        return str(_model_args(config)["pretrained"]), BASE_EDITOR, {}
    raise ValueError(
        f"{results}: config names no ripplebench model and editor (config.ripplebench) nor an "
        "`--model hf` pretrained model; pass runs of `lm_eval --model editing` or `--model hf`."
    )


def keyed_samples(path: Path) -> dict[tuple, dict[str, Any]]:
    """A sample log's records by their pairing key; one filter per task."""
    records = read_jsonl(path)
    filters = sorted({record.get("filter", "none") for record in records})
    if len(filters) > 1:
        raise ValueError(f"{path} holds the filters {', '.join(filters)}; the leaderboard reads tasks with one.")
    samples: dict[tuple, dict[str, Any]] = {}
    for number, record in enumerate(records, start=1):
        key = sample_key(record)
        if key in samples:
            raise ValueError(f"{path}, line {number}: a second sample with the key {key}.")
        samples[key] = record
    return samples


def entries_of_run(run: Run) -> list[Entry]:
    """One entry per task of a run with a results file."""
    if run.results is None:
        raise ValueError(
            f"{run.name} has no results_*.json beside it; the leaderboard needs it for the model and editor."
        )
    config = json.loads(run.results.read_text(encoding="utf-8")).get("config") or {}
    model, editor, record = who_ran(run.results, config)
    stats = {**(record.get("edit_stats") or {}), "peak_rss_mb": record.get("peak_rss_mb")}
    return [
        Entry(
            model=model,
            editor=editor,
            task=task,
            limit=config.get("limit"),
            results=run.results,
            source=path,
            oracle=stats.get("oracle") is True,
            stats={key: value for key, value in stats.items() if value is not None},
            samples=keyed_samples(path),
        )
        for task, path in run.samples.items()
    ]


def check_comparable(entries: list[Entry]) -> None:
    """Refuse entries of one model and task that ran different documents or `--limit`s, or the
    same editor twice: their numbers would not be comparable side by side."""
    first = entries[0]
    where = f"task {first.task}, model {first.model}"
    seen: dict[str, Entry] = {}
    for entry in entries:
        if entry.editor in seen:
            raise ValueError(
                f"{where}: editor {entry.editor} ran twice, {seen[entry.editor].source} and {entry.source}; pass one."
            )
        seen[entry.editor] = entry
    for other in entries[1:]:
        if other.limit != first.limit:
            raise ValueError(
                f"{where}: {first.label} ran with --limit {first.limit}, {other.label} with --limit "
                f"{other.limit}; rows of one table must run the same documents."
            )
        try:
            check_same_samples(first.samples, other.samples, names=(first.label, other.label))
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None


def collect(paths: Iterable[str | Path]) -> dict[tuple[str, str], list[Entry]]:
    """Entries of every run under `paths`, grouped by (model, task) and checked comparable."""
    groups: dict[tuple[str, str], list[Entry]] = {}
    runs = {run.results.resolve() if run.results else run.name: run for path in paths for run in find_runs(path)}
    for run in runs.values():  # a run named twice (its folder and its results file) counts once
        for entry in entries_of_run(run):
            groups.setdefault((entry.model, entry.task), []).append(entry)
    for entries in groups.values():
        check_comparable(entries)
    return groups
