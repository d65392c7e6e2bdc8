"""Sweep specs: the bundled ones load, bad ones are named precisely, a failing cell does not stop the rest."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from helpers import requires_controlled_ripple_splits

from ripplebench.core.io import read_jsonl
from ripplebench.harness.cli import main
from ripplebench.harness.locks import locked_folder
from ripplebench.harness.sweep import SpecError, load_spec, run_sweep, select

VALID = {"output": "runs", "models": ["smollm2-135m"], "editors": ["none"], "tasks": ["controlled_ripple_id"]}


def spec_file(tmp_path, **changes):
    data = {**VALID, **changes}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({key: value for key, value in data.items() if value is not None}))
    return path


def test_the_bundled_specs_load_with_their_cells(tmp_path, monkeypatch):
    smoke = load_spec("smoke")
    assert [cell.label for cell in smoke.cells()] == [
        "smollm2-135m / none / controlled_ripple_id",
        "smollm2-135m / prepend / controlled_ripple_id",
        "smollm2-135m / memit_smollm2 / controlled_ripple_id",
    ]
    assert smoke.limit == 20
    embedded = load_spec("embedded")
    assert len(embedded.tasks) == 4 and embedded.limit is None
    assert {
        "none",
        "prepend",
        "cpt",
        "memit_smollm2",
        "alphaedit_smollm2",
        "jeep_smollm2",
        "propmend_smollm2_cpu",
        "mend_smollm2_cpu",
        "meta_aug_cpt",
    } <= {editor.name for editor in embedded.editors}
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "llama-3.2-1b-qa").mkdir(parents=True)  # made by `ripplebench sft-qa`
    paper = load_spec("paper_llama3_1b")
    assert "ripple_edit" in paper.tasks and paper.judge == {"model": "gpt-4o-mini"}
    assert {"memit_llama3_1b", "propmend_llama3_1b", "cpt_mid_upper_llama3_1b"} <= {e.name for e in paper.editors}
    monkeypatch.setenv("RIPPLEBENCH_CACHE", str(tmp_path / "cache"))
    qa_model = tmp_path / "cache" / "models" / "smollm2-135m-qa"  # made by `ripplebench prepare-embedded`
    qa_model.mkdir(parents=True)
    (qa_model / "config.json").write_text("{}")
    qa = load_spec("embedded_qa")
    assert qa.limit == 800 and "controlled_ripple_val" in qa.tasks
    assert [e.name for e in qa.editors if "qa_cpu" in e.name] == [
        "mend_smollm2_qa_cpu",
        "propmend_smollm2_qa_cpu",
        "propmend_paraphrase_smollm2_qa_cpu",
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"limits": 20}, r"spec.yaml: unknown key\(s\) limits. Valid: output, models, editors, tasks, limit"),
        ({"tasks": None}, r"spec.yaml: 'tasks' is missing or empty"),
        ({"editors": ["rome"]}, r"spec.yaml: editors\[0\]: Unknown editor 'rome'. Available: none, prepend, cpt"),
        (
            {"editors": [{"editor": "cpt", "overrides": {"rate": 1}}]},
            r"editors\[0\]: Unknown setting\(s\) rate for editor 'cpt' \(given as an override\)\. Valid: batch_size",
        ),
        (
            {"editors": [{"editor": "cpt", "setting": 1}]},
            r"editors\[0\]: unknown key\(s\) setting. Valid: editor, name",
        ),
        (
            {"editors": ["cpt", {"editor": "cpt", "overrides": {"lr": 1e-4}}]},
            r"editors named cpt more than once; give each a distinct 'name'",
        ),
        ({"models": ["./no/such/model"]}, r"models\[0\]: Model './no/such/model' is neither a built-in alias"),
        ({"limit": "20"}, r"'limit' must be a positive number of documents"),
        ({"batch_size": 0}, r"'batch_size' must be a positive integer, not 0"),
        ({"compress_samples": "yes"}, r"'compress_samples' must be true or false, not 'yes'"),
        ({"judge": {"model": "m", "url": "x"}}, r"judge: unknown key\(s\) url. Valid: model, base_url, api_key"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_field_and_what_is_valid(tmp_path, changes, message):
    with pytest.raises(SpecError, match=message):
        load_spec(spec_file(tmp_path, **changes))


def test_an_unknown_task_is_refused_with_the_tasks_that_exist(tmp_path):
    spec = load_spec(spec_file(tmp_path, tasks=["controlled_ripple_idd"]))
    with pytest.raises(SpecError, match=r"unknown task\(s\) controlled_ripple_idd. Valid: .*controlled_ripple_id,"):
        run_sweep(spec)


def test_the_command_prints_one_line_for_a_bad_spec(tmp_path, capsys):
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2
    assert (
        "does not exist: pass a YAML file or a bundled spec (embedded, embedded_qa, paper_llama3_1b, smoke)"
        in capsys.readouterr().err
    )


def test_a_sweep_narrowed_to_some_editors_and_tasks_keeps_their_cell_folders():
    embedded = load_spec("embedded")
    narrow = select(embedded, ["prepend", "none"], ["controlled_ripple_ood_both"])
    assert [cell.label for cell in narrow.cells()] == [
        "smollm2-135m / none / controlled_ripple_ood_both",
        "smollm2-135m / prepend / controlled_ripple_ood_both",
    ]
    assert {cell.folder for cell in narrow.cells()} <= {cell.folder for cell in embedded.cells()}
    assert select(embedded).cells() == embedded.cells()
    with pytest.raises(SpecError, match=r"embedded.yaml has no editors rome; it has none, prepend, cpt"):
        select(embedded, ["rome"])


@requires_controlled_ripple_splits
def test_a_failing_cell_is_reported_and_the_others_still_run_with_gzipped_logs(tiny_model_dir, tmp_path, capsys):
    spec = spec_file(
        tmp_path,
        output=str(tmp_path / "runs"),
        models=[{"model": str(tiny_model_dir), "name": "tiny"}],
        editors=[
            {"name": "broken", "editor": "mend", "overrides": {"checkpoint": str(tmp_path / "none.pt")}},
            "prepend",
        ],
        tasks=["controlled_ripple_ood_both"],
        limit=4,
        batch_size=4,
        compress_samples=True,
    )
    assert main(["sweep", str(spec)]) == 1
    out = capsys.readouterr()
    assert "[1/2] tiny / broken / controlled_ripple_ood_both: FAILED" in out.out
    assert "1 cells finished, 1 failed." in out.out
    results = list((tmp_path / "runs" / "tiny" / "prepend" / "controlled_ripple_ood_both").glob("results_*.json"))
    data = json.loads(results[0].read_text())
    assert data["sweep"]["editor"] == "prepend" and data["sweep"]["wall_seconds"] > 0
    assert data["config"]["ripplebench"]["editor"] == "prepend"
    [log] = results[0].parent.glob("samples_*")
    assert log.name.endswith(".jsonl.gz") and len(read_jsonl(log)) == 4


@requires_controlled_ripple_splits
def test_a_cell_another_sweep_is_running_is_left_to_it(tiny_model_dir, tmp_path, capsys):
    spec = spec_file(
        tmp_path,
        output=str(tmp_path / "runs"),
        models=[{"model": str(tiny_model_dir), "name": "tiny"}],
        editors=["none", "prepend"],
        tasks=["controlled_ripple_ood_both"],
        limit=4,
        batch_size=4,
    )
    running = tmp_path / "runs" / "tiny" / "none" / "controlled_ripple_ood_both"
    running.mkdir(parents=True)
    with locked_folder(running, "a cell held by this test"):
        assert main(["sweep", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "[1/2] tiny / none / controlled_ripple_ood_both: left to the other sweep running it" in out
    assert "1 cells finished, 0 failed, 1 running in other sweeps." in out
    assert not list(running.iterdir())  # nothing written into the cell the other sweep runs
    assert list((tmp_path / "runs" / "tiny" / "prepend" / "controlled_ripple_ood_both").glob("results_*.json"))


def test_the_sweep_registers_the_model_and_tasks_itself_without_the_start_up_hook(tmp_path):
    code = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != '_AfterImport']  # no .pth hook\n"
        "from lm_eval.api.registry import model_registry\n"
        "from lm_eval.tasks import TaskManager\n"
        "assert not getattr(TaskManager.__init__, '_ripplebench', False) and 'editing' not in model_registry\n"
        "from ripplebench.harness.sweep import check_tasks, load_spec, task_manager_for\n"
        "spec = load_spec(sys.argv[1])\n"
        "check_tasks(spec, task_manager_for(spec))\n"
        "assert 'editing' in model_registry\n"
    )
    subprocess.run([sys.executable, "-c", code, str(spec_file(tmp_path))], check=True, timeout=300)
