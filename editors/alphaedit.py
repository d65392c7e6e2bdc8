"""`alphaedit`: MEMIT's update projected onto the null space of preserved knowledge (Fang et al. 2025).

P projects onto the eigenvectors of C0 = E[k k^T] with eigenvalues below `nullspace_threshold`,
so the update leaves the outputs for the corpus keys (almost) unchanged. P is computed from the
same cached statistics as MEMIT's and cached next to them.

Sequential editing: the editor keeps K_p K_p^T, the keys of the edits it applied, and preserves
them in later updates. Applying edits without reverting them, e.g. `apply(model, batch1)` then
`apply(model, batch2)` on the same editor, is AlphaEdit's sequential mode. `revert(handle)`
restores the weights and forgets that apply's keys, so in the benchmark's edit-then-query loop
(apply, answer, revert) every edit group is fresh. Several edits given to one `apply` are
written as one batch, or, with `edits_per_batch=N`, in batches of N edits one after the other
(each preserving the keys of the batches before it: sequential editing inside one group, as the
paper's multi-edit setting with 5 edits per batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from .base import Edit, EditHandle
from .locate.config import LocateEditConfig
from .locate.editor import EditInputs, LocateThenEdit
from .locate.stats import cached_tensor
from .locate.update import alphaedit_solver, null_space_projection, spread_update
from .locate.vstar import DeltaSite, optimise_targets


@dataclass
class AlphaEditConfig(LocateEditConfig):
    # AlphaEdit's own settings (its Llama-3 configuration); mom2_update_weight is not used.
    nullspace_threshold: float = 2e-2
    l2: float = 10.0
    # Edits per sequential batch within one apply; 0 writes all of them in one batch.
    edits_per_batch: int = 0


class AlphaEdit(LocateThenEdit):
    name = "alphaedit"
    description = "AlphaEdit: MEMIT update projected onto the null space of preserved keys (needs atomic facts)."
    config_class = AlphaEditConfig

    def __init__(self, config: AlphaEditConfig | None = None) -> None:
        super().__init__(config)
        self.preserved: dict[str, torch.Tensor] = {}  # weight name -> K_p K_p^T of applied edits
        self._preserved_before: dict[int, dict[str, torch.Tensor]] = {}

    def check(self, model_config: Any) -> None:
        super().check(model_config)
        if self.config.edits_per_batch < 0:
            raise ValueError(f"edits_per_batch must be 0 (one batch) or positive, not {self.config.edits_per_batch}.")

    def batches(self, edits: Sequence[Edit]) -> list[Sequence[Edit]]:
        size = self.config.edits_per_batch or len(edits)
        return [edits[start : start + size] for start in range(0, len(edits), size)]

    def projections(self, covariances: dict[int, torch.Tensor], files: list[str]) -> dict[int, torch.Tensor]:
        """The null-space projection of each layer, cached beside its statistics file."""
        threshold = self.config.nullspace_threshold
        return {
            layer: cached_tensor(
                Path(file).with_suffix(f".null{threshold:g}.pt"),
                lambda cov=covariance: null_space_projection(cov, threshold),
            ).to(covariance.device)
            for (layer, covariance), file in zip(covariances.items(), files)
        }

    def edit(self, model, inputs: EditInputs) -> dict[str, Any]:
        layers = self.edited_layers(model.model.config.num_hidden_layers)
        covariances, record = self.covariances(model, inputs.paths, layers)
        projections = self.projections(covariances, record["mom2_files"])
        names = {layer: inputs.paths.weight_name(layer) for layer in layers}
        preserved = {layer: self.preserved.get(names[layer], torch.zeros_like(covariances[layer])) for layer in layers}
        site = DeltaSite(layers[-1], "subject_last", self.config.clamp_norm_factor, self.config.v_weight_decay)
        (targets,), summary = optimise_targets(
            model, inputs.paths, inputs.facts, inputs.prefixes, [site], inputs.vstar_settings(self.config)
        )
        solve = alphaedit_solver(projections, preserved, self.config.l2)
        # Each layer's keys are read after the layers below it were updated and are not changed
        # by the layers above, so they are the edited model's keys, as AlphaEdit preserves them.
        keys = spread_update(model, inputs.paths, layers, inputs.rows, inputs.bare, "subject_last", targets, solve)
        self.preserved = {
            **self.preserved,
            **{names[layer]: preserved[layer] + keys[layer].T @ keys[layer] for layer in layers},
        }
        null_dims = {layer: round(float(projection.trace())) for layer, projection in projections.items()}
        return {**record, **summary, "layers": layers, "null_space_dims": null_dims}

    def apply(self, model, edits) -> EditHandle:
        before = self.preserved
        handle = super().apply(model, edits)
        self._preserved_before[id(handle)] = before
        return handle

    def revert(self, handle: EditHandle) -> None:
        super().revert(handle)
        self.preserved = self._preserved_before.pop(id(handle), self.preserved)
