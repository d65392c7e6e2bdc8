"""Knowledge editors behind one interface: `apply(model, edits)` and `revert(handle)`."""

from .base import (
    AtomicFact,
    Edit,
    EditHandle,
    Editor,
    EditorConfig,
    restore_parameters,
    snapshot_parameters,
)
from .registry import ENTRY_POINT_GROUP, available_editors, build_editor

__all__ = [
    "AtomicFact",
    "Edit",
    "EditHandle",
    "Editor",
    "EditorConfig",
    "ENTRY_POINT_GROUP",
    "available_editors",
    "build_editor",
    "restore_parameters",
    "snapshot_parameters",
]
