"""Selecting decoder layers by index range, shared by editors that train a layer subset."""

from __future__ import annotations

import torch

from ripplebench.core.models import decoder_layers


def parse_layer_range(spec: str, num_layers: int) -> range | None:
    """Parse "A-B" or "A" (0-based, inclusive) against a model with `num_layers` layers.

    An empty spec or "all" means every layer and returns None.
    """
    text = str(spec).strip()
    if text in ("", "all"):
        return None
    first, _, last = text.partition("-")
    try:
        start, stop = int(first), int(last or first)
    except ValueError:
        raise ValueError(f"Layer range '{spec}' is not of the form A-B (e.g. 10-12) or A.") from None
    if not 0 <= start <= stop < num_layers:
        raise ValueError(f"Layer range '{spec}' is outside the model: valid layers are 0-{num_layers - 1}.")
    return range(start, stop + 1)


def layer_parameters(model: torch.nn.Module, span: range) -> list[tuple[str, torch.nn.Parameter]]:
    """The named parameters of decoder layers in `span`."""
    prefix, layers = decoder_layers(model)
    return [
        (f"{prefix}.{index}.{name}", parameter)
        for index in span
        for name, parameter in layers[index].named_parameters()
    ]
