"""MEMIT end to end on the embedded SmolLM2 through lm_eval (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_lm_eval_memit_on_controlled_ripple_records_the_corpus(tmp_path):
    output = tmp_path / "out"
    quick = "editor.v_num_grad_steps=3,editor.prefix_count=1,editor.mom2_n_samples=20"
    process = subprocess.run(
        [
            str(Path(sys.executable).parent / "lm_eval"),
            "--model",
            "editing",
            "--model_args",
            f"model=smollm2-135m,editor=memit,{quick},editor.cache_dir={tmp_path / 'cache'}",
            "--tasks",
            "controlled_ripple_id",
            "--limit",
            "2",
            "--batch_size",
            "2",
            "--device",
            "cpu",
            "--output_path",
            str(output),
            "--log_samples",
        ],
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    results = json.loads(next(output.rglob("results_*.json")).read_text())
    config = results["config"]["ripplebench"]["editor_config"]
    assert config["mom2_dataset"] in ("ctrl_ripple_train", "ctrl_ripple_sample")
    assert config["layers"] == "" and config["clamp_norm_factor"] == 0.75
    metrics = results["results"]["controlled_ripple_id"]
    assert 0.0 <= metrics["efficacy,none"] <= 1.0 and 0.0 <= metrics["specificity,none"] <= 1.0
    stats = list((tmp_path / "cache" / "stats").rglob("*.pt"))
    assert len(stats) == 8  # layers 2-9, the paper's depth in SmolLM2's 30 layers
