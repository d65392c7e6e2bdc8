"""`cpt`: continued pretraining, next-token loss on the fact text.

Defaults are the paper's Table 24 (one fact injected): AdamW, learning rate 1e-5 with a linear
schedule, 4 epochs, batch size 1, max length 1024, weight decay 0.1, gradient norm clipped
at 1.0. Three ways to choose what trains:

- every parameter (CPT Full, the paper's 1B setting; the default);
- `layers="A-B"`: only decoder layers A..B, as the paper's CPT (Mid-Upper), which trains
  layers 10-12 of the 16-layer Llama-3.2-1B;
- `lora_rank=R` (R > 0): a LoRA adapter through `peft`, the paper's setting for Llama-3.1-8B
  (`layers` then limits the adapter to those layers). The paper gives no LoRA hyperparameters;
  see the `cpt_lora` preset for ours. Revert removes the adapter, so the base weights, which
  never train, come back untouched.

Subclasses (`meta_aug_cpt`, `active_reading_cpt`) train on more text than the fact alone by
overriding `training_texts`. Every run records in `handle.stats`: `train_tokens` (tokens
processed over all epochs), `fact_tokens` (one pass over the facts alone, i.e. plain CPT's
data) and `tokens_vs_cpt` (one pass over the training texts divided by `fact_tokens`, the
paper's "#token" column).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from ripplebench.core.models import decoder_layers

from .base import Edit, EditHandle, Editor, EditorConfig, snapshot_parameters
from .layers import layer_parameters, parse_layer_range
from .memory import COPIES_PER_TRAINED_PARAMETER, available_memory, size_text, training_bytes
from .training import Example, TrainingSettings, count_tokens, train


@dataclass
class CPTConfig(EditorConfig, TrainingSettings):
    # "" trains every parameter (CPT Full); "A-B" only decoder layers A..B, 0-based, inclusive.
    layers: str = ""
    # > 0 trains a LoRA adapter of this rank instead of the weights themselves.
    lora_rank: int = 0
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_target_modules: str = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


@dataclass
class LoRAHandle(EditHandle):
    """An EditHandle that also holds the peft wrapper to unload on revert."""

    adapter: Any = None
    requires_grad: list[tuple[torch.nn.Parameter, bool]] = field(default_factory=list)

    def changed_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Base weight plus LoRA delta for every layer the adapter wraps, and the base weights
        (merged here without touching the model); `saved`'s tensors without an adapter."""
        if self.adapter is None:
            return super().changed_tensors()
        from peft.tuners.lora import LoraLayer

        edited, originals = {}, {}
        network = self.adapter.get_base_model()
        with torch.no_grad():
            for module_name, module in network.named_modules():
                if not isinstance(module, LoraLayer):
                    continue
                base = module.get_base_layer().weight
                delta = sum(module.get_delta_weight(name) for name in module.active_adapters)
                name = f"{module_name}.weight"
                edited[name] = base + delta.to(base.dtype)
                originals[name] = base.detach()
        return edited, originals


class CPT(Editor):
    name = "cpt"
    description = "Continued pretraining on the fact (paper Table 24): full model, a layer range, or LoRA."
    config_class = CPTConfig

    def check(self, model_config: Any) -> None:
        parse_layer_range(self.config.layers, model_config.num_hidden_layers)
        if self.config.lora_rank < 0:
            raise ValueError(f"lora_rank must be 0 (no LoRA) or a positive rank, not {self.config.lora_rank}.")

    def trainable(self, model: torch.nn.Module, layers: str | None = None) -> list[tuple[str, torch.nn.Parameter]]:
        """The parameters full or layer-range CPT trains (`layers`, default the config's), by name."""
        span = parse_layer_range(self.config.layers if layers is None else layers, model.config.num_hidden_layers)
        if span is None:
            return list(model.named_parameters())
        return layer_parameters(model, span)

    def memory_needed(self, model: torch.nn.Module, layers: str, lora_rank: int) -> int:
        """Bytes that training adds with these settings (see editors/memory.py): the trained
        weights', or for LoRA the adapter's, weight copies, gradients and Adam moments."""
        if lora_rank <= 0:
            return training_bytes(p for _, p in self.trainable(model, layers))
        span = parse_layer_range(layers, model.config.num_hidden_layers)
        _, blocks = decoder_layers(model)
        targets = {name.strip() for name in self.config.lora_target_modules.split(",")}
        adapter = sum(
            lora_rank * (module.in_features + module.out_features) * module.weight.element_size()
            for index in (span if span is not None else range(len(blocks)))
            for name, module in blocks[index].named_modules()
            if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets
        )
        return COPIES_PER_TRAINED_PARAMETER * adapter

    def check_memory(self, model) -> None:
        """Raise MemoryError, before any training, when the estimate exceeds the memory available,
        naming settings that would fit (a range of top layers, a LoRA adapter)."""
        network, settings = model.model, self.config
        needed = self.memory_needed(network, settings.layers, settings.lora_rank)
        available = available_memory(model.device)
        if available is None or needed <= available:
            return
        count = network.config.num_hidden_layers
        fitting = []
        per_layer = self.memory_needed(network, str(count - 1), 0)
        top = min(available // max(per_layer, 1), count)
        if top >= 1:
            fitting.append(f"editor.layers={count - top}-{count - 1} ({size_text(top * per_layer)})")
        lora = self.memory_needed(network, settings.layers, 16)
        if settings.lora_rank != 16 and lora <= available:
            fitting.append(f"editor.lora_rank=16 ({size_text(lora)})")
        advice = f"Settings that fit: {', '.join(fitting)}." if fitting else "No smaller setting fits either."
        raise MemoryError(
            f"Editor '{self.name}' with layers='{settings.layers or 'all'}', lora_rank={settings.lora_rank} "
            f"needs at least {size_text(needed)} more memory to train (weight copy, gradient and two Adam "
            f"moments per trained parameter) on {model.device}, but {size_text(available)} is available. {advice}"
        )

    def training_texts(self, model, edits: Sequence[Edit]) -> list[str]:
        """The texts to train on; plain CPT uses the facts themselves."""
        return [edit.fact for edit in edits]

    def apply(self, model, edits: Sequence[Edit]) -> EditHandle:
        self.check_memory(model)
        texts = self.training_texts(model, edits)
        examples = [Example("", text) for text in texts]
        if self.config.lora_rank > 0:
            handle = self._add_adapter(model.model, edits)
            parameters = [p for name, p in handle.adapter.named_parameters() if "lora_" in name]
        else:
            named = self.trainable(model.model)
            handle = EditHandle(tuple(edits), saved=snapshot_parameters(named))
            parameters = [p for _, p in named]
        try:
            tokens = train(model.model, model.tokenizer, examples, parameters, self.config)
        except BaseException:
            self.revert(handle)  # never leave a half-trained model behind
            raise
        fact_tokens = count_tokens(model.tokenizer, [Example("", e.fact) for e in edits], self.config.max_length)
        data_tokens = count_tokens(model.tokenizer, examples, self.config.max_length)
        handle.stats.update(
            train_tokens=tokens,
            fact_tokens=fact_tokens,
            train_texts=len(texts),
            tokens_vs_cpt=round(data_tokens / max(fact_tokens, 1), 3),
        )
        return handle

    def _add_adapter(self, network: torch.nn.Module, edits: Sequence[Edit]) -> LoRAHandle:
        from peft import LoraConfig, get_peft_model

        span = parse_layer_range(self.config.layers, network.config.num_hidden_layers)
        config = LoraConfig(
            r=self.config.lora_rank,
            lora_alpha=self.config.lora_alpha,
            lora_dropout=self.config.lora_dropout,
            target_modules=[name.strip() for name in self.config.lora_target_modules.split(",") if name.strip()],
            layers_to_transform=list(span) if span is not None else None,
            bias="none",
        )
        # peft freezes the base weights; the flags are put back once the adapter is gone.
        flags = [(p, p.requires_grad) for p in network.parameters()]
        # The adapter's random initialisation is seeded per edit, so a group's result never
        # depends on what ran before it (an earlier group, or a resumed run's skipped ones).
        with torch.random.fork_rng(devices=[network.device] if network.device.type == "cuda" else []):
            torch.manual_seed(self.config.seed)
            adapter = get_peft_model(network, config)
        return LoRAHandle(tuple(edits), adapter=adapter, requires_grad=flags)

    def revert(self, handle: EditHandle) -> None:
        if isinstance(handle, LoRAHandle) and handle.adapter is not None:
            handle.adapter.unload()  # swaps each wrapped layer back for the original module
            handle.adapter = None
            for parameter, flag in handle.requires_grad:
                parameter.requires_grad_(flag)
        super().revert(handle)
