"""Determinism: the same `lm_eval --model editing` command twice gives byte-identical sample logs
and the same metrics, for every editor class on the tiny model, the training editors and Active
Reading's local generator (greedy and sampled) included; and an edit group's answers do not
depend on the groups answered before it (each edit is seeded on its own), which is what lets a
resumed run reproduce an uninterrupted one.

Each run starts with an empty cache folder (Active Reading augmentations, MEMIT statistics), so
the second run regenerates everything instead of reading what the first one wrote. The results file differs
only in what measures time or the machine: its timestamps and the timing statistics
(`edit_seconds_mean`, ..., `peak_rss_mb`), which are left out of the comparison.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import TEST_DEVICE, requires_controlled_ripple_splits
from test_mend import checkpoint, data_files  # noqa: F401 (fixtures: a tiny trained hypernetwork)

TASK = "controlled_ripple_ood_relation"  # one question (two documents) per instance: a short split
TWO_GROUPS = [0, 1, 2, 3]  # two instances: two edit groups
SECOND_GROUP = TWO_GROUPS[2:]
LOCATE = (
    "editor.mom2_dataset=ctrl_ripple_sample,editor.mom2_n_samples=40,editor.prefix_count=2,editor.v_num_grad_steps=3"
)
TRAIN = "editor.epochs=2,editor.lr=1e-3"
READ = f"{TRAIN},editor.max_new_tokens=8,editor.max_strategies=2"
# editor -> its editor.* model_args; {cache} is a fresh folder per run, {checkpoint} the hypernetwork.
EDITORS = {
    "none": "editor=none",
    "prepend": "editor=prepend",
    "cpt": f"editor=cpt,{TRAIN}",
    "cpt_layers": f"editor=cpt,editor.layers=2-3,{TRAIN}",
    "cpt_lora": f"editor=cpt_lora,editor.lora_rank=4,{TRAIN}",
    "meta_aug_cpt": f"editor=meta_aug_cpt,{TRAIN}",
    "active_reading_cpt": f"editor=active_reading_cpt,{READ},editor.cache_dir={{cache}}",
    "active_reading_cpt_sampled": f"editor=active_reading_cpt,{READ},editor.temperature=0.9,editor.cache_dir={{cache}}",
    "memit": f"editor=memit,editor.layers=0-1,{LOCATE},editor.cache_dir={{cache}}",
    "alphaedit": f"editor=alphaedit,editor.layers=0-1,{LOCATE},editor.cache_dir={{cache}}",
    "jeep": f"editor=jeep,editor.layers=0-1,editor.high_layers=2-3,{LOCATE},editor.cache_dir={{cache}}",
    "mend": "editor=mend,editor.checkpoint={checkpoint}",
    "propmend": "editor=propmend,editor.checkpoint={checkpoint}",
    "rledit": "editor=rledit,editor.checkpoint={checkpoint},editor.edits_per_turn=1",
}
TIME_DEPENDENT = ("_seconds_mean", "peak_rss_mb")


@pytest.fixture(scope="module")
def task_manager():
    """lm-eval's task index of ripplebench's tasks only (indexing all of lm-eval's takes ~25 s).

    lm-eval's environment report (pip list and the like, seconds per run) is skipped: it lands
    in the results file only, outside what is compared."""
    import lm_eval.evaluator
    from lm_eval.tasks import TaskManager

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lm_eval.evaluator, "add_env_info", lambda results: None)
        yield TaskManager(include_defaults=False)


def lm_eval(task_manager, out: Path, model_args: str, samples: list[int]) -> tuple[bytes, dict]:
    """Evaluate and write the output as `lm_eval --output_path OUT --log_samples` does, in this
    process; return the sample log's bytes and the results file's content."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker

    tracker = EvaluationTracker(output_path=str(out))
    results = simple_evaluate(
        model="editing",
        model_args=model_args,
        tasks=[TASK],
        samples={TASK: samples},
        batch_size=4,
        device=TEST_DEVICE,
        log_samples=True,
        evaluation_tracker=tracker,
        task_manager=task_manager,
    )
    logged = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=logged)
    tracker.save_results_samples(task_name=TASK, samples=logged[TASK])
    [log] = out.rglob(f"samples_{TASK}_*.jsonl")
    [results_file] = out.rglob("results_*.json")
    return log.read_bytes(), json.loads(results_file.read_text())


def comparable(results: dict) -> dict:
    """The results without what measures time: metrics, task configs and our model info."""
    info = dict(results["config"]["ripplebench"])
    info.pop("peak_rss_mb")
    info["edit_stats"] = {k: v for k, v in info["edit_stats"].items() if not k.endswith(TIME_DEPENDENT)}
    return {"results": results["results"], "configs": results["configs"], "ripplebench": info}


@requires_controlled_ripple_splits
@pytest.mark.parametrize("name", list(EDITORS))
def test_the_same_command_twice_gives_identical_samples_and_metrics(
    name,
    tiny_model_dir,
    checkpoint,  # noqa: F811 (the fixture imported above)
    task_manager,
    tmp_path,
):
    cache = tmp_path / "cache"

    def run(label: str, samples: list[int]) -> tuple[bytes, dict]:
        shutil.rmtree(cache, ignore_errors=True)  # the same command, but nothing cached by the last run
        editor = EDITORS[name].format(cache=cache, checkpoint=checkpoint)
        return lm_eval(task_manager, tmp_path / label, f"model={tiny_model_dir},{editor}", samples)

    first_log, first = run("first", TWO_GROUPS)
    second_log, second = run("second", TWO_GROUPS)
    assert second_log == first_log
    assert comparable(second) == comparable(first)
    assert first["config"]["ripplebench"]["edit_stats"]["edit_groups"] == 2

    # The second edit group alone answers exactly as it did after the first group.
    alone_log, _ = run("alone", SECOND_GROUP)
    after_first = [line for line in first_log.splitlines() if json.loads(line)["doc_id"] in SECOND_GROUP]
    assert alone_log.splitlines() == after_first


@pytest.mark.slow  # two real lm_eval processes: about a minute or two on a shared CPU
@requires_controlled_ripple_splits
def test_the_real_command_in_two_processes_writes_the_same_sample_log(tiny_model_dir, tmp_path, monkeypatch):
    """Two `lm_eval` processes with different hash seeds (set and dict-of-set orders differ)."""
    from test_lm_eval import run_lm_eval

    logs = []
    for hash_seed in ("1", "2"):
        monkeypatch.setenv("PYTHONHASHSEED", hash_seed)
        folder = tmp_path / hash_seed
        folder.mkdir()
        editor = EDITORS["active_reading_cpt_sampled"].format(cache=folder / "cache", checkpoint="")
        run_lm_eval(
            folder,
            "--model",
            "editing",
            "--model_args",
            f"model={tiny_model_dir},{editor}",
            "--tasks",
            TASK,
            "--samples",
            json.dumps({TASK: TWO_GROUPS}),
            "--batch_size",
            "4",
            "--log_samples",
        )
        [log] = (folder / "out").rglob(f"samples_{TASK}_*.jsonl")
        logs.append(log.read_bytes())
    assert logs[0] == logs[1]
