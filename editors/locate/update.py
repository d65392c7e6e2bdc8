"""The closed-form weight updates and their spread over a range of layers.

MEMIT (Meng et al. 2023, Eq. 14): for keys K [key, n] and residuals R [hidden, n] at one layer,
    Delta = R K^T (lambda C0 + K K^T)^-1,
with C0 = E[k k^T] from a corpus and lambda = mom2_update_weight.
AlphaEdit (Fang et al. 2025): the update is projected onto the null space of C0 (P), and the
keys of earlier edits, K_p, are preserved too:
    Delta = R K^T P (K K^T P + K_p K_p^T P + l2 I)^-1,
so Delta k ~ 0 for every preserved key k (P k ~ 0).
Over layers l_1 < ... < l_L the residual at the last layer is spread: at layer l_i the update
takes (v* - h) / (L - i + 1) (MEMIT), or / sqrt(L - i + 1) (JEEP's low layers), where h is
recomputed after the previous layers were updated.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import torch

from ripplebench.core.models import LoadedModel

from .modules import ModulePaths, as_weight_update, capture_inputs, capture_outputs, forward_until
from .rows import Rows

Solver = Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor]
SPREADS = ("linear", "sqrt")


def per_fact_mean(values: torch.Tensor, fact: torch.Tensor) -> torch.Tensor:
    """Average rows of `values` that belong to the same fact."""
    count = int(fact.max()) + 1
    total = torch.zeros(count, values.shape[-1], dtype=values.dtype, device=values.device).index_add(0, fact, values)
    return total / torch.bincount(fact, minlength=count).unsqueeze(-1)


@torch.no_grad()
def keys_and_hidden(
    loaded: LoadedModel, paths: ModulePaths, rows: Rows, position: str, key_layer: int, hidden_layer: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys at `key_layer` averaged over each fact's rows, and `hidden_layer`'s output per row."""
    model = loaded.model
    index = torch.arange(len(rows.fact), device=rows.fact.device)
    where = rows.position(position)
    last = paths.layer(model, hidden_layer)
    with capture_inputs({key_layer: paths.down_proj(model, key_layer)}) as keys, capture_outputs({0: last}) as outputs:
        forward_until(model, last, rows.input_ids, rows.attention_mask)
    return per_fact_mean(keys[key_layer][index, where].float(), rows.fact), outputs[0][index, where].float()


def memit_solver(covariances: Mapping[int, torch.Tensor], update_weight: float) -> Solver:
    """MEMIT's least-squares update [hidden, key] for keys [n, key] and residuals [n, hidden]."""

    def solve(layer: int, keys: torch.Tensor, residuals: torch.Tensor) -> torch.Tensor:
        k, r = keys.T.double(), residuals.T.double()
        system = update_weight * covariances[layer].double() + k @ k.T
        return (r @ torch.linalg.solve(system, k).T).float()

    return solve


def null_space_projection(covariance: torch.Tensor, threshold: float) -> torch.Tensor:
    """P = U_0 U_0^T over the eigenvectors of C0 whose eigenvalues are below `threshold`."""
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance.double())
    basis = eigenvectors[:, eigenvalues < threshold]
    return (basis @ basis.T).float()


def alphaedit_solver(
    projections: Mapping[int, torch.Tensor], preserved: Mapping[int, torch.Tensor], l2: float
) -> Solver:
    """AlphaEdit's null-space-projected update; `preserved[layer]` is K_p K_p^T of earlier edits."""

    def solve(layer: int, keys: torch.Tensor, residuals: torch.Tensor) -> torch.Tensor:
        p, k, r = projections[layer].double(), keys.T.double(), residuals.T.double()
        identity = torch.eye(p.shape[0], dtype=p.dtype, device=p.device)
        system = p @ (k @ k.T + preserved[layer].double()) + l2 * identity
        return torch.linalg.solve(system, p @ k @ r.T).T.float()

    return solve


@torch.no_grad()
def spread_update(
    loaded: LoadedModel,
    paths: ModulePaths,
    layers: Sequence[int],
    rows: Rows,
    bare: torch.Tensor,
    position: str,
    targets: torch.Tensor,
    solve: Solver,
    spread: str = "linear",
) -> dict[int, torch.Tensor]:
    """Update the down projections of `layers` so that layers[-1] outputs `targets` at `position`.

    `bare` selects each fact's row without prefix (where the residual is measured); keys are
    averaged over all of a fact's rows. Returns each layer's keys [facts, key] for AlphaEdit.
    """
    if spread not in SPREADS:
        raise ValueError(f"Unknown residual spread '{spread}'. Valid: {', '.join(SPREADS)}.")
    keys_by_layer = {}
    for number, layer in enumerate(layers):
        keys, hidden = keys_and_hidden(loaded, paths, rows, position, layer, layers[-1])
        remaining = len(layers) - number
        divisor = remaining if spread == "linear" else math.sqrt(remaining)
        residuals = (targets.float() - hidden[bare]) / divisor
        module = paths.down_proj(loaded.model, layer)
        module.weight.add_(as_weight_update(module, solve(layer, keys, residuals)))
        keys_by_layer[layer] = keys
    return keys_by_layer
