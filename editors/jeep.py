"""`jeep`: Joint knowledge Editing for information Enrichment and probability Promotion (Shi et al. 2025).

Two MLP ranges are edited: low layers (information enrichment, at the subject's last token) and
high layers (probability promotion, at the prediction position, the prompt's last token).
Both residual vectors are optimised together (its Eq. 11: one target loss, a weight decay per
delta, the KL term on the low delta only) and clamped separately, gamma_low > gamma_high
(Eq. 12). The low layers are updated first, spreading the residual by sqrt(layers left), then
the high layers with MEMIT's even spread, each with its own lambda.

Defaults are the paper's LLaMA-7B Multi-COUNTERFACT settings (Appendix D.7): 30 steps, lr 0.5,
weight decays 0.5, KL 0.0625, clamps 1 and 0.25, lambdas 2500 and 1000; its layers 5-10 and
22-24 of 32 become, by default, the PropMEND Table 26 depth (1-5 of 16) for the low range and
the same relative depth (22-24 of 32) for the high range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .locate.config import LocateEditConfig, parse_layers
from .locate.editor import EditInputs, LocateThenEdit
from .locate.update import memit_solver, spread_update
from .locate.vstar import DeltaSite, optimise_targets

HIGH_DEPTH = (22 / 32, 24 / 32)


@dataclass
class JEEPConfig(LocateEditConfig):
    # `layers`, `clamp_norm_factor`, `v_weight_decay`, `mom2_update_weight` are the low range's.
    v_num_grad_steps: int = 30
    clamp_norm_factor: float = 1.0
    mom2_update_weight: float = 2500.0
    high_layers: str = ""  # "" = 22-24 of 32 scaled to the model
    clamp_norm_factor_high: float = 0.25
    v_weight_decay_high: float = 0.5
    mom2_update_weight_high: float = 1000.0


class JEEP(LocateThenEdit):
    name = "jeep"
    description = "JEEP: joint low-layer (subject) and high-layer (prediction) MLP edit (needs atomic facts)."
    config_class = JEEPConfig

    def ranges(self, num_layers: int) -> tuple[list[int], list[int]]:
        """The low and high layer ranges; the low one must lie below the high one."""
        low = parse_layers(self.config.layers, num_layers)
        high = parse_layers(self.config.high_layers, num_layers, HIGH_DEPTH)
        if low[-1] >= high[0]:
            raise ValueError(
                f"JEEP's low layers {low} must all lie below its high layers {high} "
                "(settings `layers` and `high_layers`)."
            )
        return low, high

    def edited_layers(self, num_layers: int) -> list[int]:
        low, high = self.ranges(num_layers)
        return low + high

    def edit(self, model, inputs: EditInputs) -> dict[str, Any]:
        config = self.config
        low, high = self.ranges(model.model.config.num_hidden_layers)
        covariances, record = self.covariances(model, inputs.paths, low + high)
        sites = [
            DeltaSite(low[-1], "subject_last", config.clamp_norm_factor, config.v_weight_decay),
            DeltaSite(high[-1], "prompt_last", config.clamp_norm_factor_high, config.v_weight_decay_high, False),
        ]
        (low_targets, high_targets), summary = optimise_targets(
            model, inputs.paths, inputs.facts, inputs.prefixes, sites, inputs.vstar_settings(config)
        )
        rows, bare = inputs.rows, inputs.bare
        low_solve = memit_solver(covariances, config.mom2_update_weight)
        spread_update(model, inputs.paths, low, rows, bare, "subject_last", low_targets, low_solve, "sqrt")
        high_solve = memit_solver(covariances, config.mom2_update_weight_high)
        spread_update(model, inputs.paths, high, rows, bare, "prompt_last", high_targets, high_solve)
        return {**record, **summary, "low_layers": low, "high_layers": high}
