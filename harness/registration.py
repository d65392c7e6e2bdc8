"""What ripplebench registers with lm-eval: the model type `editing` and its tasks folder.

pyproject.toml declares both as entry points (`lm_eval.models`, `lm_eval.tasks`); code that
builds its own lm-eval run (`ripplebench sweep`) calls `register_model` and passes
`TASKS_DIR` as an include path itself, so it depends on no start-up hook. Standard library
only at import: harness/lm_eval_plugin.py imports this module at interpreter start-up.
"""

from __future__ import annotations

from pathlib import Path

MODEL_NAME = "editing"
MODEL_TARGET = "ripplebench.harness.lm_model:EditingLM"
TASKS_DIR = Path(__file__).resolve().parent.parent / "tasks"


def register_model() -> None:
    """Register the `editing` model type in lm-eval's model registry (lazily, by path)."""
    from lm_eval.api.registry import model_registry

    if MODEL_NAME not in model_registry:
        model_registry.register(MODEL_NAME, target=MODEL_TARGET)
