"""`cpt`: continued pretraining, next-token loss on the fact text.

Defaults are the paper's Table 24 (one fact injected): AdamW, learning rate 1e-5 with a linear
schedule, 4 epochs, batch size 1, max length 1024, weight decay 0.1, gradient norm clipped
at 1.0. `layers` restricts training to a range of decoder layers, as the paper's CPT
(Mid-Upper), which trains layers 10-12 of the 16-layer Llama-3.2-1B.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from .base import Edit, EditHandle, Editor, EditorConfig, restore_parameters, snapshot_parameters
from .layers import layer_parameters, parse_layer_range


@dataclass
class CPTConfig(EditorConfig):
    lr: float = 1e-5
    epochs: int = 4
    batch_size: int = 1
    max_length: int = 1024
    weight_decay: float = 0.1
    max_grad_norm: float = 1.0
    scheduler: str = "linear"
    warmup_ratio: float = 0.0
    # "" trains every parameter (CPT Full); "A-B" only decoder layers A..B, 0-based, inclusive.
    layers: str = ""


class CPT(Editor):
    name = "cpt"
    description = "Continued pretraining on the fact (paper Table 24); full model or a layer range."
    config_class = CPTConfig

    def check(self, model_config: Any) -> None:
        parse_layer_range(self.config.layers, model_config.num_hidden_layers)

    def trainable(self, model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
        """The parameters this config trains, by name."""
        span = parse_layer_range(self.config.layers, model.config.num_hidden_layers)
        if span is None:
            return list(model.named_parameters())
        return layer_parameters(model, span)

    def apply(self, model, edits: Sequence[Edit]) -> EditHandle:
        from transformers import get_scheduler

        network, tokenizer = model.model, model.tokenizer
        named = self.trainable(network)
        handle = EditHandle(tuple(edits), saved=snapshot_parameters(named))
        texts = [edit.fact for edit in edits]
        batches = [texts[i : i + self.config.batch_size] for i in range(0, len(texts), self.config.batch_size)]
        steps = self.config.epochs * len(batches)

        parameters = [p for _, p in named]
        optimizer = torch.optim.AdamW(
            [
                {"params": [p for p in parameters if p.ndim >= 2], "weight_decay": self.config.weight_decay},
                {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0},
            ],
            lr=self.config.lr,
        )
        scheduler = get_scheduler(
            self.config.scheduler,
            optimizer,
            num_warmup_steps=int(self.config.warmup_ratio * steps),
            num_training_steps=steps,
        )
        requires_grad = {name: p.requires_grad for name, p in network.named_parameters()}
        trained = {name for name, _ in named}
        for name, parameter in network.named_parameters():
            parameter.requires_grad_(name in trained)
        was_training = network.training
        network.train()
        tokens = 0
        try:
            for _ in range(self.config.epochs):
                for batch in batches:
                    encoded = tokenizer(
                        batch,
                        return_tensors="pt",
                        padding=True,
                        truncation=True,
                        max_length=self.config.max_length,
                    ).to(model.device)
                    labels = encoded["input_ids"].masked_fill(encoded["attention_mask"] == 0, -100)
                    loss = network(**encoded, labels=labels).loss
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(parameters, self.config.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    tokens += int(encoded["attention_mask"].sum())
        except BaseException:
            restore_parameters(handle.saved)  # never leave a half-trained model behind
            raise
        finally:
            network.train(was_training)
            for name, parameter in network.named_parameters():
                parameter.requires_grad_(requires_grad[name])
        handle.stats["train_tokens"] = tokens
        return handle
