"""backend=hf answers alike under every transformers version the project runs on.

`make test-vllm` runs this test twice: first in the main environment (the latest transformers),
which records the tiny model and its answers in $RIPPLEBENCH_HF_REFERENCE, then in .venv-vllm
(transformers 5.19, which vLLM's CPU build pins), which must give the same answers. The prompts
share prefixes, so the batches go through the prefix-cache path, whose keyword transformers
renamed between those versions. Without the variable the test is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from ripplebench.core.io import write_json
from ripplebench.core.models import load_model, resolve_model
from ripplebench.harness.backends.hf import greedy_generate

REFERENCE_ENV = "RIPPLEBENCH_HF_REFERENCE"
PREFIX = "Elizabeth Ruiz was born in Kenya. She spent most of her adult life in Malaysia. "
PROMPTS = [
    PREFIX + question for question in ("What is the capital of Malaysia?", "Q: A:", "What is the currency of Kenya?")
]
PROMPTS += ["Veltrix Dynamics was founded in France.", "Imagine that someone named Adam Jacobson was born in Kenya."]


def answers(model_dir: Path) -> list[str]:
    import transformers

    loaded = load_model(resolve_model(str(model_dir)))
    texts = greedy_generate(loaded.model, loaded.tokenizer, PROMPTS, max_new_tokens=12, batch_size=8)
    print(f"transformers {transformers.__version__}: {texts}")
    return texts


def test_answers_equal_those_recorded_under_the_other_transformers_version(tiny_model_dir):
    import transformers

    folder = os.environ.get(REFERENCE_ENV)
    if not folder:
        pytest.skip(f"set {REFERENCE_ENV}=DIR to record answers in one environment and compare in another")
    record = Path(folder) / "answers.json"
    if not record.is_file():  # the first environment: record the model and its answers
        shutil.copytree(tiny_model_dir, Path(folder) / "model")
        write_json(record, {"transformers": transformers.__version__, "answers": answers(Path(folder) / "model")})
        return
    recorded = json.loads(record.read_text(encoding="utf-8"))
    assert answers(Path(folder) / "model") == recorded["answers"], f"recorded under {recorded['transformers']}"
