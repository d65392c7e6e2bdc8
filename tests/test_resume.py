"""Kill -9 and rerun: `ripplebench sweep` and plain `lm_eval --model editing` end with the numbers of
an uninterrupted run, and no edit group is answered twice.

The runs are real subprocesses on the tiny model. The slow editor (CPT with many epochs, about a
second per edit group here) leaves time to SIGKILL the process once the journal holds a group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import requires_controlled_ripple_splits

from ripplebench.harness.runs import load_run, read_records

BIN = Path(sys.executable).parent
TASK = "controlled_ripple_ood_entity"
LIMIT = 40  # the first 5 instances of the split: 5 edit groups
SLOW_EDITOR = {"name": "cpt_slow", "editor": "cpt", "overrides": {"epochs": 20}}
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

pytestmark = requires_controlled_ripple_splits


def write_spec(folder: Path, model: Path, output: Path) -> Path:
    spec = folder / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "output": str(output), "models": [{"model": str(model), "name": "tiny"}],
        "editors": ["none", SLOW_EDITOR], "tasks": [TASK], "limit": LIMIT, "batch_size": 4,
    }))
    return spec


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    process = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    return process


def kill_once_journaled(command: list[str], cwd: Path, journal_dir: Path) -> None:
    """Start `command`, SIGKILL it as soon as a journal in `journal_dir` holds an answered group."""
    with (cwd / "killed.log").open("w") as log:
        process = subprocess.Popen(command, cwd=cwd, env=ENV, stdout=log, stderr=subprocess.STDOUT)
        try:
            while process.poll() is None and journal_groups(journal_dir) < 1:
                time.sleep(0.01)
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"


def journal_lines(journal_dir: Path) -> list[dict]:
    """The group lines of the one journal in `journal_dir` (header left out)."""
    files = list(journal_dir.glob("*.jsonl"))
    if not files:
        return []
    assert len(files) == 1, files
    lines = files[0].read_text(encoding="utf-8").split("\n")[1:-1]  # header; the text after the last newline
    return [json.loads(line) for line in lines]


def journal_groups(journal_dir: Path) -> int:
    files = list(journal_dir.glob("*.jsonl"))
    return files[0].read_bytes().count(b"\n") - 1 if files else 0


def outcome(folder: Path) -> tuple[dict, list]:
    """A run's aggregated metrics and its per-sample (doc, answers, metrics)."""
    found = load_run(folder)
    results = json.loads(found.results.read_text(encoding="utf-8"))
    samples = [
        (s["doc_id"], s["resps"], s["filtered_resps"], {k: s[k] for k in ("efficacy", "specificity") if k in s})
        for s in read_records(found.samples[TASK])
    ]
    return results["results"][TASK], samples


def assert_each_group_answered_once(journal_dir: Path) -> None:
    groups = [tuple(line["edit_ids"]) for line in journal_lines(journal_dir)]
    assert len(groups) == len(set(groups)) == 5


@pytest.fixture(scope="module")
def reference(tiny_model_dir, tmp_path_factory) -> Path:
    """An uninterrupted sweep of the two cells."""
    folder = tmp_path_factory.mktemp("reference")
    run([str(BIN / "ripplebench"), "sweep", str(write_spec(folder, tiny_model_dir, folder / "runs"))], folder)
    return folder / "runs" / "tiny"


def test_a_sweep_killed_mid_cell_skips_finished_cells_and_resumes_the_killed_one(tiny_model_dir, tmp_path, reference):
    command = [str(BIN / "ripplebench"), "sweep", str(write_spec(tmp_path, tiny_model_dir, tmp_path / "runs"))]
    finished, killed = tmp_path / "runs" / "tiny" / "none" / TASK, tmp_path / "runs" / "tiny" / "cpt_slow" / TASK
    kill_once_journaled(command, tmp_path, killed / "journal")
    assert list(finished.glob("results_*.json")) and not list(killed.glob("results_*.json"))
    first_results = next(finished.glob("results_*.json"))
    answered_before = len(journal_lines(killed / "journal"))
    assert 1 <= answered_before < 5

    log = run(command, tmp_path).stdout
    assert f"[1/2] tiny / none / {TASK}: finished earlier, skipped" in log
    assert f"{answered_before} edit groups from the journal" in log
    assert list(finished.glob("results_*.json")) == [first_results]  # not run again
    resumed = json.loads(next(killed.glob("results_*.json")).read_text())
    assert resumed["sweep"]["reused_edit_groups"] == answered_before
    assert resumed["config"]["ripplebench"]["edit_stats"]["edit_groups"] == 5  # reused groups' stats included
    for cell in ("none", "cpt_slow"):
        assert outcome(tmp_path / "runs" / "tiny" / cell / TASK) == outcome(reference / cell / TASK)
    assert_each_group_answered_once(killed / "journal")


def test_plain_lm_eval_killed_mid_run_resumes_from_its_journal(tiny_model_dir, tmp_path, reference):
    output = tmp_path / "out"
    command = [
        str(BIN / "lm_eval"), "--model", "editing",
        "--model_args", f"model={tiny_model_dir},editor=cpt,editor.epochs={SLOW_EDITOR['overrides']['epochs']}",
        "--tasks", TASK, "--limit", str(LIMIT), "--batch_size", "4", "--device", "cpu",
        "--output_path", str(output), "--log_samples",
    ]
    kill_once_journaled(command, tmp_path, output / "journal")
    assert not list(output.rglob("results_*.json"))
    answered_before = len(journal_lines(output / "journal"))

    process = run(command, tmp_path)
    assert f"reused {answered_before} answered edit groups from the journal" in process.stderr
    # The same numbers and answers as an uninterrupted run of the same editor (in the sweep).
    assert outcome(output) == outcome(reference / "cpt_slow" / TASK)
    assert_each_group_answered_once(output / "journal")
