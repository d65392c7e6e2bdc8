"""The ripple_edit tasks inside lm-eval: the real `lm_eval` executable on the prepared fixture."""

from __future__ import annotations

import json
from pathlib import Path

from test_lm_eval import run_lm_eval

from ripplebench.harness.data.rippleedit.prepare import prepare
from ripplebench.harness.data.rippleedit.read import DATA_DIR_ENV
from ripplebench.harness.data.rippleedit.read import load_split as load_edits
from ripplebench.harness.data.rippleedit.records import RippleEdit

FIXTURE = Path(__file__).parent / "fixtures" / "rippleedit"


def expected_metrics(edits: list[RippleEdit]) -> set[str]:
    """Every metric some question of these edits reports: category, category x stratum, type."""
    names = set()
    for query in (q for edit in edits for q in edit.queries):
        stratum = "verbatim" if query.verbatim else "nonverbatim"
        names |= {query.category, f"{query.category}_{stratum}", query.type}
    return names


def test_lm_eval_runs_ripple_edit_end_to_end_on_the_prepared_fixture(tiny_model_dir, tmp_path, monkeypatch):
    data = tmp_path / "rippleedit"
    prepare(str(FIXTURE), data, validation_size=2, test_size=2, seed=0)
    monkeypatch.setenv(DATA_DIR_ENV, str(data))
    process, results = run_lm_eval(
        tmp_path,
        "--model",
        "editing",
        "--model_args",
        f"model={tiny_model_dir},editor=none",
        "--tasks",
        "ripple_edit",
        "--batch_size",
        "4",
        "--log_samples",
    )
    test_edits = load_edits("test", data)
    metrics = results["results"]["ripple_edit"]
    reported = {key.split(",")[0] for key in metrics if key.endswith(",none") and "_stderr" not in key}
    assert reported == expected_metrics(test_edits)
    assert {"efficacy", "specificity"} <= reported
    assert all(0.0 <= metrics[f"{name},none"] <= 1.0 for name in reported)
    samples = [
        json.loads(line) for path in (tmp_path / "out").rglob("samples_ripple_edit_*.jsonl") for line in path.open()
    ]
    assert len(samples) == sum(len(edit.queries) for edit in test_edits)
    assert "efficacy" in process.stdout


def test_metadata_points_the_task_at_prepared_data(tmp_path, monkeypatch):
    from lm_eval.tasks import TaskManager

    data = tmp_path / "prepared"
    prepare(str(FIXTURE), data, validation_size=2, test_size=2, seed=1)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "nothing-here"))
    manager = TaskManager(include_defaults=False, metadata={"data_dir": str(data)})  # our tasks only: fast
    task = manager.load("ripple_edit_val")["tasks"]["ripple_edit_val"]
    questions = [doc["question"] for doc in task.test_docs()]
    assert questions == [q.prompt for edit in load_edits("validation", data) for q in edit.queries]
