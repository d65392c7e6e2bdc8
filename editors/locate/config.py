"""Settings shared by MEMIT, AlphaEdit and JEEP, and the parsing of layer lists.

Defaults are the paper's MEMIT settings for Llama-3.2-1B (PropMEND Table 26), except the corpus
size: `mom2_n_samples` is 2000 documents so that statistics take about a minute on a CPU (the
paper's 100000 is one setting away). Table 26 names are kept: `v_num_grad_steps`, `v_lr`,
`v_weight_decay`, `kl_factor`, `clamp_norm_factor`, `mom2_update_weight`, `mom2_n_samples`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..base import EditorConfig
from ..layers import parse_layer_range

# The paper edits layers 1-5 of the 16-layer Llama-3.2-1B; an empty `layers` setting takes the
# same relative depth in any model (layers 2-9 of SmolLM2's 30).
PAPER_DEPTH = (1 / 16, 5 / 16)


@dataclass
class LocateEditConfig(EditorConfig):
    # Decoder layers whose MLP down projections are edited: "A-B", "A,B,C", or "" (paper depth).
    layers: str = ""
    layer_module_tmp: str = "auto"  # e.g. "model.layers.{}"
    rewrite_module_tmp: str = "auto"  # e.g. "model.layers.{}.mlp.down_proj" (Table 26)
    # v*: MEMIT's generated prefixes (count, tokens each) in front of the bare prompt.
    prefix_count: int = 5
    prefix_length: int = 10
    v_num_grad_steps: int = 20
    v_lr: float = 0.5
    v_weight_decay: float = 0.5
    kl_factor: float = 0.0625
    clamp_norm_factor: float = 0.75
    facts_per_batch: int = 8
    # Statistics: corpus ("auto", "ctrl_ripple_train", "ctrl_ripple_sample", "wikitext-103" or
    # a file), documents, tokens per document; lambda weighting C0 in the update.
    mom2_dataset: str = "auto"
    mom2_n_samples: int = 2000
    mom2_max_length: int = 256
    mom2_batch_size: int = 16
    mom2_update_weight: float = 20000.0
    cache_dir: str = ""  # "" = $RIPPLEBENCH_CACHE or ~/.cache/ripplebench
    seed: int = 0


def parse_layers(spec: str | Sequence[int], num_layers: int, depth: tuple[float, float] = PAPER_DEPTH) -> list[int]:
    """Layer indices from "A-B", "A,B,C", a list, or "" (the `depth` fractions of the model)."""
    if isinstance(spec, (list, tuple)):
        spec = ",".join(str(layer) for layer in spec)
    text = str(spec).strip()
    if not text:
        first, last = (min(num_layers - 1, round(fraction * num_layers)) for fraction in depth)
        return list(range(first, last + 1))
    if "," not in text:
        span = parse_layer_range(text, num_layers)
        if span is None:
            raise ValueError(f"Layer setting '{spec}' must name layers, e.g. 2-9 or 2,3,4.")
        return list(span)
    try:
        layers = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise ValueError(f"Layer list '{spec}' is not of the form A,B,C (e.g. 2,3,4).") from None
    if layers[0] < 0 or layers[-1] >= num_layers:
        raise ValueError(f"Layer list '{spec}' is outside the model: valid layers are 0-{num_layers - 1}.")
    return layers
