"""Registers ripplebench's model and tasks with lm-eval, with no flags from the user.

lm-eval 0.4 discovers models from a fixed table and tasks from its own folder plus
`--include_path`; it has no plugin entry points. The wheel therefore installs a `.pth` file
that imports this module at interpreter start-up. It only installs an import hook (stdlib
only, microseconds); the registration itself runs when, and if, lm_eval is imported:

- after `lm_eval.models` loads, the model type `editing` is registered lazily;
- after `lm_eval.tasks.manager` loads, every `TaskManager` also scans ripplebench's tasks
  folder (before any user `--include_path`, so users can still override our tasks).
"""

from __future__ import annotations

import importlib.abc
import sys
from pathlib import Path
from typing import Callable

MODEL_NAME = "editing"
MODEL_TARGET = "ripplebench.harness.lm_model:EditingLM"
TASKS_DIR = Path(__file__).resolve().parent.parent / "tasks"


def register_model(models_module: object = None) -> None:
    """Register the `editing` model type in lm-eval's model registry (lazily, by path)."""
    from lm_eval.api.registry import model_registry

    if MODEL_NAME not in model_registry:
        model_registry.register(MODEL_NAME, target=MODEL_TARGET)


def add_tasks_folder(manager_module: object) -> None:
    """Make every TaskManager index ripplebench's task folder."""
    task_manager = manager_module.TaskManager  # type: ignore[attr-defined]
    original_init = task_manager.__init__
    if getattr(original_init, "_ripplebench", False):
        return

    def __init__(self, verbosity=None, include_path=None, include_defaults=True, metadata=None):
        if include_path is None:
            paths = []
        elif isinstance(include_path, (list, tuple)):
            paths = list(include_path)
        else:
            paths = [include_path]
        if TASKS_DIR not in {Path(p).resolve() for p in paths}:
            paths.insert(0, TASKS_DIR)
        original_init(self, verbosity, paths, include_defaults, metadata)

    __init__._ripplebench = True  # type: ignore[attr-defined]
    task_manager.__init__ = __init__


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs a callback right after a named module has executed."""

    def __init__(self, callbacks: dict[str, Callable[[object], None]]) -> None:
        self.callbacks = callbacks

    def find_spec(self, name, path, target=None):
        callback = self.callbacks.get(name)
        if callback is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original_exec = loader.exec_module

        def exec_module(module):
            original_exec(module)
            try:
                callback(module)
            except Exception as error:  # never break lm_eval itself
                print(f"ripplebench: could not register with lm_eval: {error}", file=sys.stderr)

        loader.exec_module = exec_module
        return spec


def install() -> None:
    """Install the hook once; apply it at once to lm_eval modules already imported."""
    callbacks = {"lm_eval.models": register_model, "lm_eval.tasks.manager": add_tasks_folder}
    if any(isinstance(finder, _AfterImport) for finder in sys.meta_path):
        return
    for name, callback in callbacks.items():
        if name in sys.modules:
            callback(sys.modules[name])
    sys.meta_path.insert(0, _AfterImport(callbacks))


install()
