"""Choosing the edited weights, and capturing their rank-1 gradient factors with hooks.

For `y = x W^T` over tokens t, dL/dW = sum_t delta_t u_t^T where u_t is the layer input and
delta_t = dL/dy_t. A forward hook keeps u; a hook on the output tensor keeps delta during the
backward pass. Tokens where either factor is zero (padding) carry nothing and are dropped.
"""

from __future__ import annotations

from typing import Callable

import torch

from ripplebench.core.models import decoder_layers
from ripplebench.editors.layers import parse_layer_range

Factors = dict[str, tuple[torch.Tensor, torch.Tensor]]


def target_weights(model: torch.nn.Module, layers: str, weights: str) -> list[str]:
    """Parameter names of the MLP matrices `weights` ("gate_proj,up_proj,down_proj") in `layers`."""
    span = parse_layer_range(layers, model.config.num_hidden_layers)
    prefix, blocks = decoder_layers(model)
    kinds = [kind.strip() for kind in weights.split(",") if kind.strip()]
    names = []
    for index in span if span is not None else range(len(blocks)):
        available = {name for name, _ in blocks[index].named_parameters()}
        for kind in kinds:
            matches = sorted(name for name in available if name.endswith(f"{kind}.weight"))
            if len(matches) != 1:
                valid = sorted(n.rsplit(".", 2)[-2] for n in available if n.endswith(".weight"))
                raise ValueError(
                    f"Weight '{kind}' does not name exactly one matrix in decoder layer {index}. "
                    f"Valid: {', '.join(valid)}."
                )
            names.append(f"{prefix}.{index}.{matches[0]}")
    return names


def _owning_module(model: torch.nn.Module, name: str) -> torch.nn.Module:
    module = model.get_submodule(name.rsplit(".", 1)[0])
    if not isinstance(module, torch.nn.Linear):
        raise ValueError(f"'{name}' is not the weight of a linear layer; MEND edits linear layers only.")
    return module


def rank1_factors(
    model: torch.nn.Module, names: list[str], loss_fn: Callable[[], torch.Tensor]
) -> tuple[Factors, torch.Tensor]:
    """Run `loss_fn` and backpropagate; return each weight's (u, delta) token factors and the loss.

    Only the named weights receive gradient; no parameter's `.grad` is touched, and every
    parameter's `requires_grad` flag is restored afterwards.
    """
    parameters = dict(model.named_parameters())
    flags = {name: p.requires_grad for name, p in parameters.items()}
    inputs: dict[str, torch.Tensor] = {}
    grads: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def forward_hook(module, args, output):
            inputs[name] = args[0].detach()
            output.register_hook(lambda grad: grads.__setitem__(name, grad.detach()))

        return forward_hook

    handles = [_owning_module(model, name).register_forward_hook(hook_for(name)) for name in names]
    try:
        for name, parameter in parameters.items():
            parameter.requires_grad_(name in names)
        with torch.enable_grad():
            loss = loss_fn()
            torch.autograd.grad(loss, [parameters[name] for name in names])
    finally:
        for handle in handles:
            handle.remove()
        for name, parameter in parameters.items():
            parameter.requires_grad_(flags[name])
    factors = {}
    for name in names:
        u = inputs[name].reshape(-1, inputs[name].shape[-1])
        delta = grads[name].reshape(-1, grads[name].shape[-1])
        keep = (u != 0).any(-1) & (delta != 0).any(-1)
        factors[name] = (u[keep], delta[keep])
    return factors, loss.detach()
