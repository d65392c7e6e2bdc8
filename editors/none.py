"""`none`: the unedited model, the baseline every editor is compared with."""

from __future__ import annotations

from typing import Sequence

from .base import Edit, EditHandle, Editor


class NoEdit(Editor):
    name = "none"
    description = "No edit: answers with the unedited model (baseline)."
    changes_weights = False

    def apply(self, model, edits: Sequence[Edit]) -> EditHandle:
        return EditHandle(tuple(edits))
