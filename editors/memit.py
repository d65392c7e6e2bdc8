"""`memit`: Mass-Editing Memory in a Transformer (Meng et al. 2023).

All atomic facts of the edits are written in one batch: v* is optimised at the last edited
layer (subject's last token), then the down projections of the edited layers are updated in
closed form from the lowest up, each taking its share of the remaining residual. Defaults follow
PropMEND Table 26 for Llama-3.2-1B; see editors/locate/config.py and the presets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .locate.config import LocateEditConfig
from .locate.editor import EditInputs, LocateThenEdit
from .locate.update import memit_solver, spread_update
from .locate.vstar import DeltaSite, optimise_targets


@dataclass
class MEMITConfig(LocateEditConfig):
    pass


class MEMIT(LocateThenEdit):
    name = "memit"
    description = "MEMIT: closed-form batch update of MLP down projections (needs atomic facts)."
    config_class = MEMITConfig

    def edit(self, model, inputs: EditInputs) -> dict[str, Any]:
        layers = self.edited_layers(model.model.config.num_hidden_layers)
        covariances, record = self.covariances(model, inputs.paths, layers)
        site = DeltaSite(layers[-1], "subject_last", self.config.clamp_norm_factor, self.config.v_weight_decay)
        (targets,), summary = optimise_targets(
            model, inputs.paths, inputs.facts, inputs.prefixes, [site], inputs.vstar_settings(self.config)
        )
        solve = memit_solver(covariances, self.config.mom2_update_weight)
        spread_update(model, inputs.paths, layers, inputs.rows, inputs.bare, "subject_last", targets, solve)
        return {**record, **summary, "layers": layers}
