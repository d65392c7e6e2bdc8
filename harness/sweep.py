"""`ripplebench sweep SPEC.yaml`: every (model, editor, task) cell through lm-eval, resumably.

Each cell runs `simple_evaluate` with `--model editing` and `log_samples` on, as `lm_eval` does,
and saves what `lm_eval --output_path CELL --log_samples` would, in
`OUTPUT/<model>/<editor>/<task>/`: `results_<time>.json` (plus the cell's wall time under
`sweep`) and `samples_<task>_<time>.jsonl`. Resume works at two grains: a cell whose results file
exists is skipped, and a cell killed mid-way resumes from its journal of answered edit groups
(`CELL/journal/`, see harness/journal.py). Several sweeps of one spec can run at once (e.g. one
per core): a cell being run is locked, and the others move on to the next cell.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from ripplebench.core.io import read_jsonl, write_json, write_jsonl
from ripplebench.core.presets import find_preset
from ripplebench.harness.locks import Busy, locked_folder
from ripplebench.harness.registration import TASKS_DIR, register_model
from ripplebench.harness.runs import RESULTS_PREFIX, SAMPLES_PREFIX

SPECS_DIR = Path(__file__).resolve().parent.parent / "leaderboards" / "specs"
SPEC_KEYS = (
    "output", "models", "editors", "tasks", "limit", "batch_size", "judge", "include_path", "compress_samples",
)  # fmt: skip
MODEL_KEYS = ("model", "name", "gguf_file", "prompt_format", "max_new_tokens", "dtype", "device", "cache_dir")
EDITOR_KEYS = ("editor", "name", "config", "overrides")
HEADLINE_METRICS = ("efficacy", "specificity", "llm_efficacy", "llm_specificity")
STAGING = ".staging"


class SpecError(ValueError):
    """A sweep spec that cannot run; the message names the file and the field."""


@dataclass(frozen=True)
class SpecModel:
    """One model of a spec."""

    name: str  # the label: folder name and leaderboard row group
    args: dict[str, Any]  # `--model editing` args: model=..., prompt_format=...


@dataclass(frozen=True)
class SpecEditor:
    """One editor of a spec: its label, the editor or preset name, a YAML config and overrides."""

    name: str
    editor: str
    config: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def model_args(self) -> dict[str, Any]:
        """The editor's `--model editing` args."""
        args: dict[str, Any] = {"editor": self.editor}
        if self.config:
            args["editor_config"] = self.config
        args.update({f"editor.{key}": value for key, value in self.overrides.items()})
        return args


@dataclass(frozen=True)
class SweepCell:
    """One (model, editor, task) run of a sweep and the folder it is saved in."""

    model: SpecModel
    editor: SpecEditor
    task: str
    folder: Path

    @property
    def label(self) -> str:
        return f"{self.model.name} / {self.editor.name} / {self.task}"

    def results_file(self) -> Path | None:
        """The cell's results file: it exists once the cell has finished."""
        return next(iter(sorted(self.folder.glob(f"{RESULTS_PREFIX}*.json"))), None)


@dataclass(frozen=True)
class Spec:
    path: Path
    output: Path
    models: list[SpecModel]
    editors: list[SpecEditor]
    tasks: list[str]
    limit: int | float | None = None
    batch_size: int = 16
    judge: dict[str, Any] = field(default_factory=dict)
    include_path: list[str] = field(default_factory=list)
    compress_samples: bool = False  # keep each cell's sample log gzipped (samples_*.jsonl.gz)

    def cells(self) -> list[SweepCell]:
        """Every (model, editor, task) combination, models outermost."""
        return [
            SweepCell(model, editor, task, self.output / model.name / editor.name / task)
            for model in self.models
            for editor in self.editors
            for task in self.tasks
        ]


def find_spec(name: str | Path) -> Path:
    """A spec file path, or the name of a bundled spec (`smoke` for leaderboards/specs/smoke.yaml)."""
    try:
        return find_preset(name, SPECS_DIR, "Sweep spec", "spec")
    except ValueError as error:
        raise SpecError(str(error)) from None


def load_spec(name: str | Path) -> Spec:
    """Read and check a spec: keys, types, editor names and settings, judge settings, models.

    Task names are checked by `run_sweep` against the tasks lm-eval can load.
    """
    path = find_spec(name)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping with keys {', '.join(SPEC_KEYS)}.")
    _check_keys(data, SPEC_KEYS, str(path))
    for key in ("output", "models", "editors", "tasks"):
        if not data.get(key):
            raise SpecError(f"{path}: '{key}' is missing or empty.")
    for key in ("models", "editors", "tasks"):
        if not isinstance(data[key], list):
            raise SpecError(f"{path}: '{key}' must be a list.")
    limit = data.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit <= 0):
        raise SpecError(
            f"{path}: 'limit' must be a positive number of documents (or a fraction below 1), not {limit!r}."
        )
    batch_size = data.get("batch_size", 16)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SpecError(f"{path}: 'batch_size' must be a positive integer, not {batch_size!r}.")
    compress = data.get("compress_samples", False)
    if not isinstance(compress, bool):
        raise SpecError(f"{path}: 'compress_samples' must be true or false, not {compress!r}.")
    tasks = data["tasks"]
    if not all(isinstance(task, str) for task in tasks):
        raise SpecError(f"{path}: 'tasks' must be a list of task names.")
    include = data.get("include_path") or []
    spec = Spec(
        path=path,
        output=Path(str(data["output"])).expanduser(),
        models=[_spec_model(item, f"{path}: models[{i}]") for i, item in enumerate(data["models"])],
        editors=[_spec_editor(item, f"{path}: editors[{i}]") for i, item in enumerate(data["editors"])],
        tasks=list(dict.fromkeys(tasks)),
        limit=limit,
        batch_size=batch_size,
        judge=_judge_settings(data.get("judge") or {}, f"{path}: judge"),
        include_path=[str(p) for p in ([include] if isinstance(include, str) else include)],
        compress_samples=compress,
    )
    for kind, entries in (("models", spec.models), ("editors", spec.editors)):
        names = [entry.name for entry in entries]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise SpecError(f"{path}: {kind} named {', '.join(repeated)} more than once; give each a distinct 'name'.")
    return spec


def select(spec: Spec, editors: Sequence[str] = (), tasks: Sequence[str] = ()) -> Spec:
    """The spec narrowed to some of its editors and tasks (all where none are named), so a long
    sweep can run its cheap cells first; the cells keep their folders, so nothing is redone."""
    chosen = {}
    for kind, names, valid in (("editors", editors, [e.name for e in spec.editors]), ("tasks", tasks, spec.tasks)):
        unknown = [name for name in names if name not in valid]
        if unknown:
            raise SpecError(f"{spec.path} has no {kind} {', '.join(unknown)}; it has {', '.join(valid)}.")
        chosen[kind] = set(names or valid)
    return dataclasses.replace(
        spec,
        editors=[entry for entry in spec.editors if entry.name in chosen["editors"]],
        tasks=[task for task in spec.tasks if task in chosen["tasks"]],
    )


def _check_keys(data: dict, valid: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}. Valid: {', '.join(valid)}.")


def _entry_mapping(item: Any, key: str, keys: tuple[str, ...], where: str, what: str) -> dict[str, Any]:
    """A spec list entry as a mapping: a bare name stands for `{key: name}`; `key` is required."""
    if isinstance(item, str):
        item = {key: item}
    if not isinstance(item, dict) or not item.get(key):
        raise SpecError(f"{where}: expected {what}, or a mapping with '{key}'.")
    _check_keys(item, keys, where)
    return item


def _label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("._") or "model"


def _spec_model(item: Any, where: str) -> SpecModel:
    from ripplebench.core.models import resolve_model

    item = _entry_mapping(item, "model", MODEL_KEYS, where, "a model name or path")
    try:
        resolve_model(str(item["model"]), item.get("gguf_file"))
    except ValueError as error:
        raise SpecError(f"{where}: {error}") from None
    name = str(item.get("name") or _label(Path(str(item["model"])).name))
    return SpecModel(name, {key: value for key, value in item.items() if key != "name"})


def _spec_editor(item: Any, where: str) -> SpecEditor:
    from ripplebench.editors.registry import build_editor

    item = _entry_mapping(item, "editor", EDITOR_KEYS, where, "an editor or preset name")
    overrides = item.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise SpecError(f"{where}: 'overrides' must map editor settings to values, e.g. {{lr: 3.0e-5}}.")
    entry = SpecEditor(str(item.get("name") or item["editor"]), str(item["editor"]), item.get("config"), overrides)
    try:
        build_editor(entry.editor, overrides, entry.config)  # names and settings; loads no weights
    except (ValueError, TypeError) as error:
        raise SpecError(f"{where}: {error}") from None
    return entry


def _judge_settings(judge: Any, where: str) -> dict[str, Any]:
    from ripplebench.harness.judge import JudgeSettings

    if not isinstance(judge, dict):
        raise SpecError(f"{where}: expected a mapping of judge settings, e.g. {{model: gpt-4o-mini}}.")
    _check_keys(judge, tuple(JudgeSettings.names()), where)
    return dict(judge)


def check_tasks(spec: Spec, task_manager: Any) -> None:
    """Refuse task names lm-eval cannot load, listing those it can."""
    known = set(task_manager.all_tasks)
    unknown = [task for task in spec.tasks if task not in known]
    if unknown:
        valid = ", ".join(sorted(task_manager.all_subtasks))
        raise SpecError(f"{spec.path}: unknown task(s) {', '.join(unknown)}. Valid: {valid}.")


def task_manager_for(spec: Spec) -> Any:
    """ripplebench's tasks folder plus `include_path`: only tasks whose documents carry edits run
    with --model editing, so lm-eval's own catalogue is not indexed. Judge settings reach the
    tasks as metadata, as `--metadata` does for lm_eval. Also registers `--model editing`: the
    sweep relies on no start-up hook (harness/registration.py)."""
    from lm_eval.tasks import TaskManager

    from ripplebench.harness.judge import METADATA_PREFIX

    register_model()
    metadata = {f"{METADATA_PREFIX}{key}": value for key, value in spec.judge.items()}
    include_path = [str(TASKS_DIR), *spec.include_path]
    return TaskManager(include_path=include_path, include_defaults=False, metadata=metadata)


def run_cell(spec: Spec, cell: SweepCell, task_manager: Any) -> Path:
    """Evaluate one cell as `lm_eval --model editing --log_samples --output_path` would; its results file.

    lm-eval's tracker writes into `CELL/.staging/`; the sample log is then moved into the cell
    and the results file written atomically last, so that it only exists for a finished cell.
    The cell's folder is locked meanwhile: a second sweep gets `Busy` and leaves the cell alone.
    """
    cell.folder.mkdir(parents=True, exist_ok=True)
    with locked_folder(cell.folder, f"Cell {cell.label} ({cell.folder})"):
        # Another sweep may have finished it between our check and the lock.
        return cell.results_file() or _evaluate_cell(spec, cell, task_manager)


def _evaluate_cell(spec: Spec, cell: SweepCell, task_manager: Any) -> Path:
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker

    from ripplebench.harness.judge import METADATA_PREFIX

    staging = cell.folder / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    for stale in [*staging.iterdir(), *cell.folder.glob(f"{SAMPLES_PREFIX}*.jsonl*")]:
        stale.unlink()  # left by an attempt killed while saving
    # The tasks get every judge setting as metadata (task_manager_for); the model gets those its
    # manifest records (never secrets such as api_key, which model_args would write into results).
    judge = {f"{METADATA_PREFIX}{key}": spec.judge[key] for key in ("model", "template") if key in spec.judge}
    model_args = {**cell.model.args, **cell.editor.model_args(), **judge, "journal": str(cell.folder / "journal")}
    tracker = EvaluationTracker(output_path=str(staging / "results.json"))
    started = time.perf_counter()
    results = simple_evaluate(
        model="editing",
        model_args=model_args,
        tasks=[cell.task],
        limit=spec.limit,
        batch_size=spec.batch_size,
        log_samples=True,
        evaluation_tracker=tracker,
        task_manager=task_manager,
    )
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task_name in results["configs"]:
        tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
    wall = time.perf_counter() - started
    written = sorted(staging.glob(f"{RESULTS_PREFIX}*.json"))
    if not written:
        raise RuntimeError(f"lm-eval saved no results for {cell.label} under {staging} (see its log above).")
    for sample_log in staging.glob(f"{SAMPLES_PREFIX}*.jsonl"):
        if spec.compress_samples:
            write_jsonl(cell.folder / f"{sample_log.name}.gz", read_jsonl(sample_log))
            sample_log.unlink()
        else:
            os.replace(sample_log, cell.folder / sample_log.name)
    data = json.loads(written[0].read_text(encoding="utf-8"))
    journals = data.get("config", {}).get("ripplebench", {}).get("journals", [])
    data["sweep"] = {
        "spec": str(spec.path),
        "model": cell.model.name,
        "editor": cell.editor.name,
        "task": cell.task,
        "wall_seconds": round(wall, 1),  # this attempt; reused groups ran in an earlier one
        "reused_edit_groups": sum(journal["reused_groups"] for journal in journals),
    }
    final = cell.folder / written[0].name
    write_json(final, data)
    written[0].unlink()
    staging.rmdir()
    return final


def headline(results: dict[str, Any], task: str) -> str:
    """`efficacy 0.040 ± 0.028, specificity ...` for a cell's progress line."""
    metrics = results.get("results", {}).get(task, {})
    parts = []
    for name in HEADLINE_METRICS:
        value = metrics.get(f"{name},none")
        if isinstance(value, (int, float)):
            stderr = metrics.get(f"{name}_stderr,none")
            error = f" ± {stderr:.3f}" if isinstance(stderr, (int, float)) else ""
            parts.append(f"{name} {value:.3f}{error}")
    return ", ".join(parts) or "no headline metric"


@dataclass
class SweepReport:
    """What a sweep run did: each cell's results file, the cells that failed with why, and the
    cells another process was running."""

    results: list[Path] = field(default_factory=list)
    failed: list[tuple[SweepCell, str]] = field(default_factory=list)
    busy: list[SweepCell] = field(default_factory=list)


def run_sweep(spec: Spec, write: Callable[[str], None] | None = None) -> SweepReport:
    """Run every unfinished cell, one at a time, with a line per cell and an overall bar.

    A cell that fails is reported and the sweep goes on with the next; rerunning retries it.
    A cell another sweep is running is left to it.
    """
    from tqdm import tqdm

    task_manager = task_manager_for(spec)
    check_tasks(spec, task_manager)
    cells = spec.cells()
    write = write or tqdm.write
    report = SweepReport()
    with tqdm(total=len(cells), desc="sweep", unit="cell") as bar:
        for number, cell in enumerate(cells, start=1):
            prefix = f"[{number}/{len(cells)}] {cell.label}"
            done = cell.results_file()
            if done is not None:
                write(f"{prefix}: finished earlier, skipped ({done})")
            else:
                write(f"{prefix}: running ({cell.folder})")
                try:
                    done = run_cell(spec, cell, task_manager)
                except Busy:
                    report.busy.append(cell)
                    write(f"{prefix}: left to the other sweep running it")
                except Exception as error:  # one broken cell must not stop a sweep of hours
                    report.failed.append((cell, f"{type(error).__name__}: {error}"))
                    write(f"{prefix}: FAILED: {type(error).__name__}: {error}")
                else:
                    data = json.loads(done.read_text(encoding="utf-8"))
                    reused = data["sweep"]["reused_edit_groups"]
                    resumed = f", {reused} edit groups from the journal" if reused else ""
                    write(f"{prefix}: {headline(data, cell.task)} ({data['sweep']['wall_seconds']} s{resumed})")
            if done is not None:
                report.results.append(done)
            bar.update()
    return report
