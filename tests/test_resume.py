"""Kill -9 and rerun: `ripplebench sweep` and plain `lm_eval --model editing` end with the numbers of
an uninterrupted run, and no edit group is answered twice.

The runs are real subprocesses on the tiny model (and, marked slow, on the embedded SmolLM2). The
slow editor on the tiny model (CPT with many epochs, about a second per edit group) leaves time
to SIGKILL the process once the journal holds a group.
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
from helpers import TEST_DEVICE, requires_controlled_ripple_splits

from ripplebench.core.io import read_jsonl
from ripplebench.harness.runs import load_run

BIN = Path(sys.executable).parent
TASK = "controlled_ripple_ood_entity"
LIMIT, GROUPS = 40, 5  # the first 5 instances of the split: 5 edit groups
SLOW_EDITOR = {"name": "cpt_slow", "editor": "cpt", "overrides": {"epochs": 20}}
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

pytestmark = requires_controlled_ripple_splits


def write_spec(folder: Path, model: Path | str, output: Path, editors: list | None = None, limit: int = LIMIT) -> Path:
    spec = folder / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "output": str(output),
                "models": [{"model": str(model), "name": "m"}],
                "editors": editors or ["none", SLOW_EDITOR],
                "tasks": [TASK],
                "limit": limit,
                "batch_size": 4,
            }
        )
    )
    return spec


def run(command: list[str], cwd: Path, env: dict[str, str] = ENV) -> subprocess.CompletedProcess:
    process = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    return process


def kill_once_journaled(command: list[str], cwd: Path, journal_dir: Path, env: dict[str, str] = ENV) -> None:
    """Start `command`, SIGKILL it as soon as a journal in `journal_dir` holds an answered group."""
    with (cwd / "killed.log").open("w") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while process.poll() is None and not journal_lines(journal_dir):
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


def outcome(folder: Path) -> tuple[dict, list]:
    """A run's aggregated metrics and its per-sample (doc, answers, metrics)."""
    found = load_run(folder)
    results = json.loads(found.results.read_text(encoding="utf-8"))
    samples = [
        (s["doc_id"], s["resps"], s["filtered_resps"], {k: s[k] for k in ("efficacy", "specificity") if k in s})
        for s in read_jsonl(found.samples[TASK])
    ]
    return results["results"][TASK], samples


def assert_each_group_answered_once(journal_dir: Path, expected: int = GROUPS) -> None:
    groups = [tuple(line["edit_ids"]) for line in journal_lines(journal_dir)]
    assert len(groups) == len(set(groups)) == expected


@pytest.fixture(scope="module")
def reference(tiny_model_dir, tmp_path_factory) -> Path:
    """An uninterrupted sweep of the two cells."""
    folder = tmp_path_factory.mktemp("reference")
    run([str(BIN / "ripplebench"), "sweep", str(write_spec(folder, tiny_model_dir, folder / "runs"))], folder)
    return folder / "runs" / "m"


def test_a_sweep_killed_mid_cell_skips_finished_cells_and_resumes_the_killed_one(tiny_model_dir, tmp_path, reference):
    command = [str(BIN / "ripplebench"), "sweep", str(write_spec(tmp_path, tiny_model_dir, tmp_path / "runs"))]
    finished, killed = tmp_path / "runs" / "m" / "none" / TASK, tmp_path / "runs" / "m" / "cpt_slow" / TASK
    kill_once_journaled(command, tmp_path, killed / "journal")
    assert list(finished.glob("results_*.json")) and not list(killed.glob("results_*.json"))
    first_results = next(finished.glob("results_*.json"))
    answered_before = len(journal_lines(killed / "journal"))
    assert 1 <= answered_before < GROUPS

    log = run(command, tmp_path).stdout
    assert f"[1/2] m / none / {TASK}: finished earlier, skipped" in log
    assert f"{answered_before} edit groups from the journal" in log
    assert list(finished.glob("results_*.json")) == [first_results]  # not run again
    resumed = json.loads(next(killed.glob("results_*.json")).read_text())
    assert resumed["sweep"]["reused_edit_groups"] == answered_before
    assert resumed["config"]["ripplebench"]["edit_stats"]["edit_groups"] == 5  # reused groups' stats included
    for cell in ("none", "cpt_slow"):
        assert outcome(tmp_path / "runs" / "m" / cell / TASK) == outcome(reference / cell / TASK)
    assert_each_group_answered_once(killed / "journal")


def assert_lm_eval_resumes_after_kill(
    folder: Path, model_args: str, reference: Path, limit: int = LIMIT, groups: int = GROUPS
) -> None:
    """Kill `lm_eval` mid-run, rerun it: the numbers and answers of the uninterrupted `reference` cell.

    No journal= arg: the journal lies in the cache folder (a fresh one here) while the run is
    unfinished, and is removed once the rerun has answered every group."""
    output, journals = folder / "out", folder / "cache" / "journals"
    env = {**ENV, "RIPPLEBENCH_CACHE": str(folder / "cache")}
    command = [
        str(BIN / "lm_eval"),
        "--model",
        "editing",
        "--model_args",
        model_args,
        "--tasks",
        TASK,
        "--limit",
        str(limit),
        "--batch_size",
        "4",
        "--device",
        TEST_DEVICE,
        "--output_path",
        str(output),
        "--log_samples",
    ]
    kill_once_journaled(command, folder, journals, env)
    assert not list(output.rglob("results_*.json"))
    answered_before = len(journal_lines(journals))
    assert 1 <= answered_before < groups

    process = run(command, folder, env)
    assert f"reused {answered_before} answered edit groups from the journal" in process.stderr
    assert outcome(output) == outcome(reference)
    [journal] = json.loads(next(output.rglob("results_*.json")).read_text())["config"]["ripplebench"]["journals"]
    assert (journal["reused_groups"], journal["answered_groups"]) == (answered_before, groups - answered_before)
    assert not list(journals.glob("*.jsonl"))  # a finished run is not replayed from the cache


def test_plain_lm_eval_killed_mid_run_resumes_from_its_journal(tiny_model_dir, tmp_path, reference):
    epochs = SLOW_EDITOR["overrides"]["epochs"]
    assert_lm_eval_resumes_after_kill(
        tmp_path, f"model={tiny_model_dir},editor=cpt,editor.epochs={epochs}", reference / "cpt_slow" / TASK
    )


@pytest.mark.slow
def test_plain_lm_eval_on_the_embedded_model_killed_mid_run_resumes(tmp_path):
    folder = tmp_path / "reference"
    folder.mkdir()
    # 3 edit groups (4, 14 and 4 documents), each journaled on its own by a weight editor: an
    # in-context editor answers them in one shared batch and journals them at once, right before
    # the run ends and its cache journal is removed, which leaves no moment to kill it in.
    limit = 22
    run(
        [
            str(BIN / "ripplebench"),
            "sweep",
            str(write_spec(folder, "smollm2-135m", folder / "runs", ["cpt"], limit)),
        ],
        folder,
    )
    assert_lm_eval_resumes_after_kill(
        tmp_path, "model=smollm2-135m,editor=cpt", folder / "runs" / "m" / "cpt" / TASK, limit, groups=3
    )
