"""Module paths of Llama-, Qwen2-, Gemma 3- and GPT-2-style models, and the hooks on them.

A locate-then-edit editor reads two things: the *key*, the input of an MLP's output projection
("down projection"), and the *hidden state*, the output of a decoder layer. Both are found by
templates with `{}` for the layer index, e.g. `model.layers.{}.mlp.down_proj`. `auto` finds the
decoder layers and then the first known down-projection name inside them.
"""

from __future__ import annotations

import copy
import functools
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterator, Mapping

import torch

from ripplebench.core.models import cache_keyword, decoder_layers

from .rows import SplitRows

# A cache of earlier tokens' keys and values (transformers' Cache) and the positions of the
# tokens that continue them.
Past = tuple[Any, torch.Tensor]

# Down projections of the MLP inside one decoder layer: Llama/SmolLM2/Qwen2/Gemma 3, GPT-2,
# GPT-NeoX, GPT-J, OPT.
DOWN_PROJECTIONS = ("mlp.down_proj", "mlp.c_proj", "mlp.dense_4h_to_h", "mlp.fc_out", "fc2")


@dataclass(frozen=True)
class ModulePaths:
    """Templates naming a decoder layer and its MLP down projection by layer index."""

    layer_tmp: str
    rewrite_tmp: str

    def layer(self, model: torch.nn.Module, index: int) -> torch.nn.Module:
        return model.get_submodule(self.layer_tmp.format(index))

    def down_proj(self, model: torch.nn.Module, index: int) -> torch.nn.Module:
        return model.get_submodule(self.rewrite_tmp.format(index))

    def weight_name(self, index: int) -> str:
        return self.rewrite_tmp.format(index) + ".weight"


def _exists(model: torch.nn.Module, name: str) -> bool:
    try:
        model.get_submodule(name)
    except AttributeError:
        return False
    return True


def resolve_paths(model: torch.nn.Module, layer_tmp: str = "auto", rewrite_tmp: str = "auto") -> ModulePaths:
    """Resolve `auto` templates for this model and check that both templates name modules."""
    if layer_tmp == "auto":
        prefix, _ = decoder_layers(model)
        layer_tmp = prefix + ".{}"
    if rewrite_tmp == "auto":
        candidates = [f"{layer_tmp}.{name}" for name in DOWN_PROJECTIONS]
        found = [template for template in candidates if _exists(model, template.format(0))]
        if not found:
            raise ValueError(
                f"Could not find an MLP down projection in {type(model).__name__}; tried "
                f"{', '.join(candidates)}. Set rewrite_module_tmp, e.g. 'model.layers.{{}}.mlp.down_proj'."
            )
        rewrite_tmp = found[0]
    for kind, template in (("layer_module_tmp", layer_tmp), ("rewrite_module_tmp", rewrite_tmp)):
        if "{}" not in template or not _exists(model, template.format(0)):
            raise ValueError(
                f"{kind} '{template}' does not name a module of {type(model).__name__} "
                "(it needs '{}' for the layer index, e.g. 'model.layers.{}.mlp.down_proj')."
            )
    return ModulePaths(layer_tmp, rewrite_tmp)


def as_weight_update(module: torch.nn.Module, delta: torch.Tensor) -> torch.Tensor:
    """Lay out a [hidden, key] update like the module's weight (GPT-2's Conv1D stores it transposed)."""
    weight = module.weight
    if isinstance(module, torch.nn.Linear):
        update = delta
    else:  # transformers' Conv1D: weight is [in_features, out_features]
        update = delta.T
    if update.shape != weight.shape:
        raise ValueError(f"Update of shape {tuple(delta.shape)} does not fit weight {tuple(weight.shape)}.")
    return update.to(weight.dtype)


def _first(output: torch.Tensor | tuple) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


@contextmanager
def _recording(
    modules: Mapping[int, torch.nn.Module], register: Callable[[torch.nn.Module, Callable], Any]
) -> Iterator[dict[int, torch.Tensor]]:
    """Install one recording hook per module (via `register`) for the duration of the block."""
    store: dict[int, torch.Tensor] = {}
    handles = [register(module, functools.partial(store.__setitem__, key)) for key, module in modules.items()]
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()


def capture_inputs(modules: Mapping[int, torch.nn.Module]) -> ContextManager[dict[int, torch.Tensor]]:
    """Record the first positional input of each module (the keys, for down projections)."""
    return _recording(modules, lambda module, save: module.register_forward_pre_hook(lambda _m, args: save(args[0])))


def capture_outputs(modules: Mapping[int, torch.nn.Module]) -> ContextManager[dict[int, torch.Tensor]]:
    """Record each module's output hidden states [batch, tokens, hidden]."""
    return _recording(
        modules, lambda module, save: module.register_forward_hook(lambda _m, _a, output: save(_first(output)))
    )


@contextmanager
def edit_output(module: torch.nn.Module, change: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Replace the module's hidden-state output h by change(h) during the block."""

    def hook(_module, _args, output):
        if isinstance(output, tuple):
            return (change(output[0]), *output[1:])
        return change(output)

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def replay_layers(model: torch.nn.Module, paths: ModulePaths, count: int, run: Callable[[], object]) -> Iterator[None]:
    """Run `run` once, recording what decoder layers 0..count-1 return; within the block those
    layers return the recorded outputs without computing, so repeated forward passes over the
    same inputs (e.g. v* optimisation steps that only change later layers) skip them."""
    layers = [paths.layer(model, index) for index in range(count)]
    recorded: dict[int, object] = {}
    handles = [
        layer.register_forward_hook(lambda _m, _a, output, index=index: recorded.__setitem__(index, output))
        for index, layer in enumerate(layers)
    ]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    for index, layer in enumerate(layers):
        layer.forward = lambda *_args, _output=recorded[index], **_kwargs: _output
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward  # back to the class's forward


@torch.no_grad()
def cache_past(model: torch.nn.Module, split: SplitRows) -> Past | None:
    """The keys and values of the split rows' past tokens, with the positions of their current
    tokens: what `forward_until` and `logits_at` take to run only the current tokens."""
    if split.past_ids.shape[1] == 0:
        return None
    from transformers import DynamicCache

    cache = DynamicCache()  # filled by the forward pass
    model.base_model(
        input_ids=split.past_ids,
        attention_mask=split.past_mask,
        position_ids=split.past_positions,
        use_cache=True,
        **{cache_keyword(model.base_model): cache},
    )
    return cache, split.positions


class _Stop(Exception):
    """Raised by a hook to end a forward pass early."""


def _inputs(
    model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, past: Past | None
) -> dict[str, Any]:
    """Keyword inputs of a forward pass, continuing `past` when one is given."""
    if past is None:
        return {"input_ids": input_ids, "attention_mask": attention_mask, "use_cache": False}
    cache, positions = past
    # A copy: the pass appends the new tokens' keys and values to the cache it is given.
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "position_ids": positions,
        cache_keyword(model.base_model): copy.deepcopy(cache),
        "use_cache": True,
    }


def forward_until(
    model: torch.nn.Module,
    module: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    past: Past | None = None,
) -> None:
    """Run the model on the inputs but stop once `module` has computed its output (hooks on
    `module` and earlier modules still run); saves the layers above when only they are read.
    With `past`, the inputs continue the cached tokens (`attention_mask` covers both)."""

    def stop(_module, _args, _output):
        raise _Stop

    handle = module.register_forward_hook(stop)
    try:
        model(**_inputs(model, input_ids, attention_mask, past))
    except _Stop:
        pass
    finally:
        handle.remove()


def logits_at(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    where: torch.Tensor,
    past: Past | None = None,
) -> torch.Tensor:
    """Next-token logits only at the positions marked in `where` [batch, tokens], row-major
    (`past` as in `forward_until`).

    The output projection is the largest matrix of a small model; applying it to a few
    positions instead of all of them makes v* optimisation markedly cheaper.
    """
    hidden = model.base_model(**_inputs(model, input_ids, attention_mask, past)).last_hidden_state
    logits = model.get_output_embeddings()(hidden[where])
    cap = getattr(model.config, "final_logit_softcapping", None)  # Gemma
    return torch.tanh(logits / cap) * cap if cap else logits
