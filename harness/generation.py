"""Batched greedy decoding with transformers."""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import torch


def truncate_at_stops(text: str, stops: Sequence[str]) -> str:
    """Cut `text` at the first occurrence of any stop sequence."""
    cut = len(text)
    for stop in stops:
        if stop:
            index = text.find(stop)
            if index != -1:
                cut = min(cut, index)
    return text[:cut]


class Decode(Protocol):
    """What the engine decodes with: greedy answers to rendered prompts (HF or vLLM backend)."""

    def __call__(
        self, prompts: Sequence[str], *, max_new_tokens: int, stops: Sequence[str], add_special_tokens: bool
    ) -> list[str]: ...


@torch.no_grad()
def greedy_generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 20,
    stops: Sequence[str] = (),
    batch_size: int = 16,
    add_special_tokens: bool = True,
) -> list[str]:
    """Greedily continue each prompt (left-padded batches) and return the new text only.

    Pass `add_special_tokens=False` for chat-templated prompts, which already hold them.
    """
    outputs: list[str] = []
    device = next(model.parameters()).device
    for start in range(0, len(prompts), batch_size):
        batch = list(prompts[start : start + batch_size])
        encoded = tokenizer(
            batch, return_tensors="pt", padding=True, add_special_tokens=add_special_tokens
        ).to(device)
        generated = model.generate(
            **encoded,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
        new_tokens = generated[:, encoded["input_ids"].shape[1] :]
        for row in tokenizer.batch_decode(new_tokens, skip_special_tokens=True):
            outputs.append(truncate_at_stops(row, stops))
    return outputs
