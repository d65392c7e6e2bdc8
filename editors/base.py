"""The editor interface: what an edit is, and how an editor applies and reverts it.

An editor is built from a config dataclass. `apply(model, edits)` changes the model (or, for
in-context editors, the prompts) and returns an `EditHandle`; `revert(handle)` restores the
model bit-for-bit. Weight editors snapshot exactly the tensors they will touch (the snapshot is
the only copy), and a revert swaps the saved tensors back in without copying.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Sequence

import torch

if TYPE_CHECKING:
    from ripplebench.core.models import LoadedModel


@dataclass(frozen=True)
class AtomicFact:
    """One (prompt, target, subject) triple, the input format of MEMIT/MEND-style editors."""

    prompt: str
    target: str
    subject: str


@dataclass(frozen=True)
class Edit:
    """A new fact to inject.

    `subject_type` is "person" or "company" for Controlled RippleEdit (it picks the Prepend
    wording) and empty otherwise.
    """

    id: str
    fact: str
    atomic_facts: tuple[AtomicFact, ...] = ()
    subject_type: str = ""


@dataclass
class EditorConfig:
    """Base class of editor configs; editors subclass it with their own fields."""


@dataclass
class EditHandle:
    """What `apply` returns and `revert` consumes.

    `context` is text an in-context editor places before each question; `saved` holds the
    original values of the parameters a weight editor changed; `stats` records what the edit
    cost (e.g. training tokens) for results tables.
    """

    edits: tuple[Edit, ...]
    context: str = ""
    saved: dict[str, tuple[torch.nn.Parameter, torch.Tensor]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def changed_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The tensors the applied edit changed, by parameter name: (edited values, original
        values). By default those named in `saved`; nothing for in-context editors."""
        edited = {name: parameter.detach() for name, (parameter, _) in self.saved.items()}
        originals = {name: value for name, (_, value) in self.saved.items()}
        return edited, originals


class Editor(ABC):
    """Base class of every editor. Subclasses set `description` and `config_class`.

    Built-in editors also set `name`; a third-party editor is named by its entry point.
    An in-context editor sets `changes_weights = False`: its `apply` only builds the handle's
    `context` and never touches the model, so the engine answers the questions of many edit
    groups in shared batches instead of one apply-answer-revert cycle per group.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    config_class: ClassVar[type[EditorConfig]] = EditorConfig
    changes_weights: ClassVar[bool] = True

    def __init__(self, config: EditorConfig | None = None) -> None:
        self.config = config if config is not None else self.config_class()

    def check(self, model_config: Any) -> None:
        """Raise ValueError if this editor's config cannot work with a model of this config.

        Called before any model work starts; the default accepts every model.
        """

    def status(self) -> str:
        """What `ripplebench editors` shows about this editor's state here, e.g. "not trained
        here" for a hypernetwork without a checkpoint; empty when there is nothing to say."""
        return ""

    @abstractmethod
    def apply(self, model: LoadedModel, edits: Sequence[Edit]) -> EditHandle:
        """Inject `edits` into `model` and return a handle that `revert` can undo."""

    def revert(self, handle: EditHandle) -> None:
        """Undo `apply`: copy the saved tensors back into the parameters they came from."""
        restore_parameters(handle.saved)
        handle.saved = {}


def snapshot_parameters(
    named: Iterable[tuple[str, torch.nn.Parameter]],
) -> dict[str, tuple[torch.nn.Parameter, torch.Tensor]]:
    """Keep each parameter with a detached copy of its value, for `restore_parameters`."""
    return {name: (parameter, parameter.detach().clone()) for name, parameter in named}


def restore_parameters(saved: dict[str, tuple[torch.nn.Parameter, torch.Tensor]]) -> None:
    """Put saved values back into their parameters, bit-for-bit.

    Each parameter takes the saved tensor as its data (the edited one is freed), so a revert
    costs no copy however large the edit; the saved values must not be used afterwards.
    """
    for parameter, value in saved.values():
        parameter.data = value
