"""Helpers shared by tests."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest
import torch

# Where the tests put their models: the CPU, unless RIPPLEBENCH_TEST_DEVICE names another device
# (`RIPPLEBENCH_TEST_DEVICE=cuda pytest -m "not slow"` runs the same assertions on a GPU).
TEST_DEVICE = os.environ.get("RIPPLEBENCH_TEST_DEVICE", "cpu")


def parameters_hash(model: torch.nn.Module) -> str:
    """A digest of every parameter's name and exact bytes."""
    digest = hashlib.sha256()
    for name, parameter in model.state_dict().items():
        digest.update(name.encode())
        digest.update(parameter.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _missing_controlled_ripple_splits() -> list[str]:
    from ripplebench.core.paths import CONTROLLED_RIPPLE_DATA_DIR
    from ripplebench.harness.data.controlled_ripple.splits import SPLITS, split_path

    return [split for split in SPLITS if not split_path(CONTROLLED_RIPPLE_DATA_DIR, split).is_file()]


# Tests that run the controlled_ripple_* tasks need the generated splits. They are generated and
# committed once the knowledge base is complete (`ripplebench data controlled-ripple generate`);
# until then these tests are skipped, saying so.
requires_controlled_ripple_splits = pytest.mark.skipif(
    bool(_missing_controlled_ripple_splits()),
    reason="Controlled RippleEdit splits not generated yet: run `ripplebench data controlled-ripple generate`",
)


def load_benchmark(name: str) -> ModuleType:
    """A script of benchmarks/ (not part of the package), imported as a module."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
