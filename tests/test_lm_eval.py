"""The `editing` model inside lm-eval: arguments, refusals, and the real `lm_eval` executable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TEST_DEVICE, requires_controlled_ripple_splits
from lm_eval.api.instance import Instance

from ripplebench.harness.lm_model import EditingLM

LM_EVAL = Path(sys.executable).parent / "lm_eval"


def request(doc: dict, question: str, doc_id: int = 0) -> Instance:
    return Instance(
        request_type="generate_until",
        doc=doc,
        arguments=(question, {"until": ["\n"], "max_gen_toks": 5}),
        idx=0,
        metadata=("controlled_ripple_id", doc_id, 1),
    )


def test_generate_until_groups_by_the_documents_edit(tiny_model_dir):
    lm = EditingLM(model=str(tiny_model_dir), editor="prepend", batch_size=2)
    docs = [{"edit_id": f"e{i % 2}", "fact": f"Fact {i % 2}."} for i in range(4)]
    answers = lm.generate_until([request(doc, f"q{i}?", i) for i, doc in enumerate(docs)], disable_tqdm=True)
    assert len(answers) == 4
    info = lm.get_model_info()["ripplebench"]
    assert info["editor"] == "prepend" and info["prompt_format"] == "chat"


def test_editor_none_survives_lm_evals_none_parsing(tiny_model_dir):
    lm = EditingLM.create_from_arg_string(f"model={tiny_model_dir},editor=none")
    assert lm.editor_name == "none"


def test_editor_fields_are_set_through_prefixed_model_args(tiny_model_dir):
    lm = EditingLM.create_from_arg_string(f"model={tiny_model_dir},editor=cpt,editor.layers=1-2,editor.lr=1e-4")
    assert (lm.editor.config.layers, lm.editor.config.lr) == ("1-2", 1e-4)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("editor=rome", r"Unknown editor 'rome'. Available: none, prepend, cpt"),
        ("editor=cpt,editor.layers=0-40", r"Layer range '0-40' is outside the model: valid layers are 0-3"),
        ("editor=cpt,editor.rate=1", r"Unknown setting\(s\) rate for editor 'cpt'"),
        ("temperature=0.7", r"Unknown model_args temperature for --model editing"),
        ("prompt_format=alpaca", r"Unknown prompt_format 'alpaca'. Valid: auto, chat, qa, raw"),
    ],
)
def test_bad_model_args_fail_before_loading_weights(tiny_model_dir, monkeypatch, args, message):
    import ripplebench.harness.lm_model as lm_model

    monkeypatch.setattr(lm_model, "load_model", lambda *a, **k: pytest.fail("weights were loaded"))
    with pytest.raises(ValueError, match=message):
        EditingLM.create_from_arg_string(f"model={tiny_model_dir},{args}")


def test_unknown_model_alias_or_path_is_explained(tmp_path):
    with pytest.raises(ValueError, match=r"neither a built-in alias \(smollm2-135m, smollm2-135m-qa\)"):
        EditingLM(model=str(tmp_path / "missing"))


def test_lm_evals_response_cache_is_refused(tiny_model_dir, tmp_path):
    from lm_eval.api.model import CachingLM

    lm = EditingLM(model=str(tiny_model_dir))
    with pytest.raises(ValueError, match="--use_cache is not supported with --model editing"):
        CachingLM(lm, str(tmp_path / "cache.db"))


def test_lm_evals_chat_template_flag_is_refused_with_the_alternative(tiny_model_dir):
    lm = EditingLM(model=str(tiny_model_dir))
    with pytest.raises(ValueError, match="prompt_format=chat"):
        lm.chat_template(True)


def run_lm_eval(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the real lm_eval executable from an unrelated folder; return it and its results."""
    output = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    process = subprocess.run(
        [str(LM_EVAL), *args, "--output_path", str(output), "--device", TEST_DEVICE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    results = json.loads(next(output.rglob("results_*.json")).read_text())
    return process, results


@requires_controlled_ripple_splits
def test_lm_eval_runs_editing_tasks_with_no_extra_flags(tiny_model_dir, tmp_path):
    process, results = run_lm_eval(
        tmp_path,
        "--model",
        "editing",
        "--model_args",
        f"model={tiny_model_dir},editor=prepend",
        "--tasks",
        "controlled_ripple_ood_entity",
        "--limit",
        "6",
        "--batch_size",
        "4",
    )
    metrics = results["results"]["controlled_ripple_ood_entity"]
    assert {"efficacy,none", "specificity,none", "efficacy_stderr,none"} <= set(metrics)
    assert "efficacy" in process.stdout and "specificity" in process.stdout
    assert results["config"]["ripplebench"]["editor_config"]["person_template"].startswith("Imagine that")


@requires_controlled_ripple_splits
def test_plain_lm_eval_models_run_the_tasks_as_the_unedited_baseline(tiny_model_dir, tmp_path):
    _, results = run_lm_eval(
        tmp_path,
        "--model",
        "hf",
        "--model_args",
        f"pretrained={tiny_model_dir}",
        "--tasks",
        "controlled_ripple_ood_both",
        "--limit",
        "4",
    )
    assert "specificity,none" in results["results"]["controlled_ripple_ood_both"]


def test_the_results_record_a_manifest_of_what_the_numbers_depend_on(tiny_model_dir):
    import hashlib
    import importlib.metadata

    from ripplebench.core.models import weights_identity
    from ripplebench.harness.judge import DEFAULT_TEMPLATE
    from ripplebench.harness.manifest import git_commit, source_checkout

    lm = EditingLM(model=str(tiny_model_dir), editor="prepend", batch_size=2, judge_model="gpt-4o-mini")
    docs = [{"edit_id": f"e{i % 2}", "fact": f"Fact {i % 2}."} for i in range(4)]
    lm.generate_until([request(doc, f"q{i}?", i) for i, doc in enumerate(docs)], disable_tqdm=True)
    lm.edit_stats.append({"mom2_files": ["l1.pt", "l2.pt"], "mom2_corpus": "wiki", "mom2_computed_layers": [1]})
    lm.edit_stats.append({"mom2_files": ["l1.pt", "l2.pt"], "mom2_corpus": "wiki", "mom2_computed_layers": []})
    manifest = lm.get_model_info()["ripplebench"]["manifest"]

    assert manifest["ripplebench_version"] == importlib.metadata.version("ripplebench")
    assert git_commit(tiny_model_dir) is None  # not a checkout: no commit, no failure
    checkout = source_checkout()  # `make install` records the checkout it installs from
    if checkout is not None and (checkout / ".git").exists():
        head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert manifest["git_commit"] == (head.stdout.strip() or None)
    assert manifest["weights"] == weights_identity(lm.source)
    [data_hash] = manifest["task_data"].values()
    assert list(manifest["task_data"]) == ["controlled_ripple_id"] and len(data_hash) == 16
    other = EditingLM(model=str(tiny_model_dir), editor="prepend")
    other.generate_until([request({**doc, "fact": "Other."}, "q?", i) for i, doc in enumerate(docs)], disable_tqdm=True)
    assert other.get_model_info()["ripplebench"]["manifest"]["task_data"]["controlled_ripple_id"] != data_hash
    assert manifest["statistics"] == {"mom2_files": ["l1.pt", "l2.pt"], "mom2_corpus": ["wiki"]}
    template_sha = hashlib.sha256(DEFAULT_TEMPLATE.read_bytes()).hexdigest()
    assert manifest["judge"] == {
        "model": "gpt-4o-mini",
        "template": DEFAULT_TEMPLATE.name,
        "template_sha256": template_sha,
    }
