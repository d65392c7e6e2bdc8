"""lm-eval output folders: find a run's results file and per-task sample logs, read and rewrite them.

`lm_eval --output_path OUT --log_samples` writes OUT/<model>/results_<time>.json and, per task,
OUT/<model>/samples_<task>_<time>.jsonl (one JSON record per document and filter). A sample log
may also be gzipped (`.jsonl.gz`, as a sweep with `compress_samples` keeps it); core.io reads and
writes both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

RESULTS_PREFIX = "results_"
SAMPLES_PREFIX = "samples_"
SAMPLE_SUFFIXES = (".jsonl", ".jsonl.gz")


@dataclass
class Run:
    """One lm-eval run: its results file (None for bare sample logs) and each task's sample log."""

    results: Path | None
    samples: dict[str, Path] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.results or next(iter(self.samples.values())))


def _timestamp(results: Path) -> str:
    return results.stem[len(RESULTS_PREFIX) :]


def _sample_stem(path: Path) -> str:
    """The name without `.jsonl` or `.jsonl.gz`."""
    name = path.name
    for suffix in sorted(SAMPLE_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _run_of_results(results: Path) -> Run:
    stamp = _timestamp(results)
    samples = {
        _sample_stem(path)[len(SAMPLES_PREFIX) : -len(stamp) - 1]: path
        for suffix in SAMPLE_SUFFIXES
        for path in sorted(results.parent.glob(f"{SAMPLES_PREFIX}*_{stamp}{suffix}"))
    }
    return Run(results, samples)


def _task_of_samples(path: Path) -> str:
    """`samples_<task>_<time>.jsonl[.gz]` -> task; any other JSON-lines file is named by its stem."""
    stem = _sample_stem(path)
    if stem.startswith(SAMPLES_PREFIX) and "_" in stem[len(SAMPLES_PREFIX) :]:
        return stem[len(SAMPLES_PREFIX) :].rsplit("_", 1)[0]
    return stem


def _visible(folder: Path, pattern: str) -> list[Path]:
    """Files matching `pattern` below `folder`, leaving out hidden folders such as a sweep cell's
    `.staging/`, which holds a run only while it is being saved."""
    return sorted(
        p for p in folder.rglob(pattern) if not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def find_runs(path: str | Path) -> list[Run]:
    """Every run under a folder, or the run a results / samples file belongs to."""
    path = Path(path)
    if path.is_file():
        if path.name.startswith(RESULTS_PREFIX) and path.suffix == ".json":
            return [_run_of_results(path)]
        return [Run(None, {_task_of_samples(path): path})]
    if not path.is_dir():
        raise FileNotFoundError(f"No lm-eval output at {path}: expected a folder, a results_*.json or a samples file.")
    runs = [_run_of_results(results) for results in _visible(path, f"{RESULTS_PREFIX}*.json")]
    listed = {sample for run in runs for sample in run.samples.values()}
    logs = [log for suffix in SAMPLE_SUFFIXES for log in _visible(path, f"{SAMPLES_PREFIX}*{suffix}")]
    runs += [Run(None, {_task_of_samples(log): log}) for log in sorted(logs) if log not in listed]
    if not any(run.samples for run in runs):
        raise FileNotFoundError(f"No sample logs under {path}: run lm_eval with --log_samples.")
    return [run for run in runs if run.samples]


def load_run(path: str | Path) -> Run:
    """The single run at `path`; several runs in one folder must be told apart by their results file."""
    runs = find_runs(path)
    if len(runs) > 1:
        names = "\n  ".join(run.name for run in runs)
        raise ValueError(f"{path} holds {len(runs)} runs; pass one results file:\n  {names}")
    return runs[0]
