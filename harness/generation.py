"""Batched greedy decoding with transformers."""

from __future__ import annotations

from typing import Any, Sequence

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


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Stack token rows into left-padded `input_ids` and `attention_mask` (generation pads left)."""
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for number, row in enumerate(rows):
        if row:
            input_ids[number, width - len(row) :] = torch.tensor(row)
            mask[number, width - len(row) :] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


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
    """Greedily continue each prompt and return the new text only, in the order of `prompts`.

    Each distinct prompt is tokenized once (all in one call) and generated once; batches take
    the prompts in order of token length, so a batch holds rows of similar length and little
    left padding. Pass `add_special_tokens=False` for chat-templated prompts, which already
    hold them.
    """
    unique = list(dict.fromkeys(prompts))
    if not unique:
        return []
    rows = tokenizer(unique, add_special_tokens=add_special_tokens)["input_ids"]
    order = sorted(range(len(unique)), key=lambda index: len(rows[index]))  # stable: ties keep order
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    texts: dict[str, str] = {}
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        encoded = {key: value.to(device) for key, value in left_pad([rows[i] for i in chosen], pad_id).items()}
        generated = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id)
        new_tokens = generated[:, encoded["input_ids"].shape[1] :]
        for index, row in zip(chosen, tokenizer.batch_decode(new_tokens, skip_special_tokens=True)):
            texts[unique[index]] = truncate_at_stops(row, stops)
    return [texts[prompt] for prompt in prompts]
