"""The fallback registration with lm-eval 0.4, which reads no plugin entry points.

pyproject.toml declares ripplebench's model and tasks as entry points (`lm_eval.models`,
`lm_eval.tasks`, see harness/registration.py). lm-eval 0.4.x (0.4.13 included) reads neither, so
the wheel also installs a `.pth` file that imports this module at interpreter start-up. It only
installs an import hook (stdlib only, microseconds); whether it registers anything is decided
when, and if, lm_eval is imported:

- the decision is by version (`needs_hook`): lm-eval below 0.5, the series pyproject.toml
  allows, gets the hook; any later lm-eval is left to read the entry points. A version check,
  not a feature check, because lm-eval 0.4 offers nothing to probe without instantiating its
  TaskManager; allowing lm-eval 0.5 in pyproject.toml means checking that it reads them.
- after `lm_eval.models` loads, the model type `editing` is registered lazily;
- after `lm_eval.tasks.manager` loads, every `TaskManager` also scans ripplebench's tasks
  folder (before any user `--include_path`, so users can still override our tasks).
"""

from __future__ import annotations

import importlib.abc
import sys
from pathlib import Path
from typing import Callable

from ripplebench.harness.registration import TASKS_DIR, register_model

ENTRY_POINTS_SINCE = (0, 5)  # the first lm-eval series assumed to read plugin entry points


def needs_hook(version: str) -> bool:
    """Whether an lm-eval of this version needs the hook (it reads no plugin entry points)."""
    parts = []
    for part in version.split(".")[:2]:
        digits = "".join(char for char in part if char.isdigit()) or "0"
        parts.append(int(digits))
    return tuple(parts) < ENTRY_POINTS_SINCE


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


def _installed_lm_eval_needs_hook() -> bool:
    """Decided once lm_eval's package has run (its __init__ sets __version__)."""
    return needs_hook(getattr(sys.modules.get("lm_eval"), "__version__", "0"))


CALLBACKS: dict[str, Callable[[object], None]] = {
    "lm_eval.models": lambda module: register_model(),
    "lm_eval.tasks.manager": add_tasks_folder,
}


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs a callback right after a named module has executed, where lm-eval needs the hook."""

    def __init__(self, callbacks: dict[str, Callable[[object], None]]) -> None:
        self.callbacks = callbacks

    def find_spec(self, name, path, target=None):
        callback = self.callbacks.get(name)
        if callback is None or not _installed_lm_eval_needs_hook():
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
    if any(isinstance(finder, _AfterImport) for finder in sys.meta_path):
        return
    if "lm_eval" in sys.modules and _installed_lm_eval_needs_hook():
        for name, callback in CALLBACKS.items():
            if name in sys.modules:
                callback(sys.modules[name])
    sys.meta_path.insert(0, _AfterImport(CALLBACKS))


install()
