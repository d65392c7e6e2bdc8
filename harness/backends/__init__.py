"""Decoding backends: what answers the engine's prompts, chosen by the model arg `backend`.

A backend decodes greedily (`decode`) and, when it holds its own copy of the weights, follows
each edit of the Hugging Face copy through two hooks: `after_apply` (the edit is in place) and
`before_revert` (it is about to be undone). Built-ins: `hf` decodes with the HF copy itself
(hooks do nothing), `vllm` with a vLLM engine next to it. Adding a backend is one module with a
`Backend` subclass, named in `BACKENDS`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

if TYPE_CHECKING:
    from ripplebench.core.models import LoadedModel
    from ripplebench.editors.base import EditHandle

# backend name -> "module:Class"; modules are imported only when their backend is asked for.
BACKENDS: dict[str, str] = {
    "hf": "ripplebench.harness.backends.hf:HFBackend",
    "vllm": "ripplebench.harness.backends.vllm:VLLMBackend",
}


class Backend(ABC):
    """Greedy decoding for the engine, told about every edit applied to the HF copy."""

    # The backend-specific model args it accepts (e.g. vLLM's `gpu_memory_utilization`).
    model_args: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def configure(cls, **given: Any) -> Any:
        """Check the given `model_args` (and what the backend needs installed) before any model
        work; return the settings `start` receives. The default takes none."""
        return None

    @classmethod
    @abstractmethod
    def start(cls, model: LoadedModel, settings: Any, *, folder: str, dtype: str, batch_size: int) -> Backend:
        """The backend for the loaded `model` (read from `folder` in `dtype`), with `configure`'s settings."""

    @abstractmethod
    def decode(
        self, prompts: Sequence[str], *, max_new_tokens: int, stops: Sequence[str], add_special_tokens: bool
    ) -> list[str]:
        """Greedy answers to rendered prompts, in order, each cut at its first stop sequence."""

    def after_apply(self, handle: EditHandle) -> None:
        """Called once an edit is applied to the HF copy; if it raises, the edit is reverted."""

    def before_revert(self, handle: EditHandle) -> None:
        """Called before an applied edit is reverted (the HF copy is reverted even if this raises)."""


def truncate_at_stops(text: str, stops: Sequence[str]) -> str:
    """Cut `text` at the first occurrence of any stop sequence."""
    cut = len(text)
    for stop in stops:
        if stop:
            index = text.find(stop)
            if index != -1:
                cut = min(cut, index)
    return text[:cut]


def backend_class(name: str) -> type[Backend]:
    """The Backend subclass registered as `name`."""
    if name not in BACKENDS:
        raise ValueError(f"Unknown backend '{name}'. Valid: {', '.join(BACKENDS)}.")
    module, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def configure_backend(name: str, **model_args: Any) -> Any:
    """Check backend `name` and its model args (None: not given) before any model work; its settings."""
    chosen = backend_class(name)
    given = {key: value for key, value in model_args.items() if value is not None}
    stray = [key for key in given if key not in chosen.model_args]
    if stray:
        owners = [other for other in BACKENDS if set(stray) & set(backend_class(other).model_args)]
        used = " or ".join(f"backend={owner}" for owner in owners) or "no backend"
        raise ValueError(f"{', '.join(stray)}: only used with {used} (backend is '{name}').")
    return chosen.configure(**given)


def build_backend(name: str, model: LoadedModel, settings: Any, *, folder: str, dtype: str, batch_size: int) -> Backend:
    """Start backend `name` for the loaded `model`, with the settings `configure_backend` returned."""
    return backend_class(name).start(model, settings, folder=folder, dtype=dtype, batch_size=batch_size)
