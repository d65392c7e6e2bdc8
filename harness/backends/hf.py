"""`backend=hf`: batched greedy decoding with transformers on the HF copy itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import torch

from ripplebench.core.models import cache_keyword
from ripplebench.harness.backends import Backend, truncate_at_stops

if TYPE_CHECKING:
    from ripplebench.core.models import LoadedModel


class HFBackend(Backend):
    """Decodes with the model being edited, so its edits need no hooks."""

    def __init__(self, model: LoadedModel, batch_size: int) -> None:
        self.model = model
        self.batch_size = batch_size

    @classmethod
    def start(cls, model: LoadedModel, settings: Any, *, folder: str, dtype: str, batch_size: int) -> HFBackend:
        return cls(model, batch_size)

    def decode(
        self, prompts: Sequence[str], *, max_new_tokens: int, stops: Sequence[str], add_special_tokens: bool
    ) -> list[str]:
        """Greedy answers from the HF model, in batches of `batch_size`."""
        return greedy_generate(
            self.model.model,
            self.model.tokenizer,
            prompts,
            max_new_tokens=max_new_tokens,
            stops=stops,
            batch_size=self.batch_size,
            add_special_tokens=add_special_tokens,
        )


def shared_prefix(rows: Sequence[Sequence[int]]) -> int:
    """Tokens that every row starts with, leaving each row at least one token of its own."""
    limit = min(len(row) for row in rows) - 1
    count = 0
    while count < limit and all(row[count] == rows[0][count] for row in rows):
        count += 1
    return count


def batch_cost(rows: Sequence[Sequence[int]], steps: int) -> int:
    """Tokens one batch runs through the model: the shared prefix once, each row's padded
    remainder, and one per decoding step (a step costs about the same at any batch size here)."""
    shared = shared_prefix(rows)
    return shared + len(rows) * (max(len(row) for row in rows) - shared) + steps


def plan_batches(rows: Sequence[Sequence[int]], batch_size: int, steps: int) -> list[list[int]]:
    """Batches of row indices: rows in token order (rows sharing a prefix, such as one edit's
    context, come together), each joining the current batch while that costs less than
    starting a new one (see `batch_cost`), up to `batch_size` rows."""
    batches: list[list[int]] = []
    for index in sorted(range(len(rows)), key=lambda i: list(rows[i])):
        if batches and len(batches[-1]) < batch_size:
            current = [rows[i] for i in batches[-1]]
            joined = batch_cost([*current, rows[index]], steps)
            if joined <= batch_cost(current, steps) + batch_cost([rows[index]], steps):
                batches[-1].append(index)
                continue
        batches.append([index])
    return batches


def pad_after_prefix(rows: Sequence[Sequence[int]], shared: int, pad_id: int) -> dict[str, torch.Tensor]:
    """`input_ids` and `attention_mask` of rows that share `shared` leading tokens: the prefix,
    then padding, then each row's own tokens (plain left padding when `shared` is 0)."""
    width = max(len(row) for row in rows) - shared
    input_ids = torch.full((len(rows), shared + width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), shared + width), dtype=torch.long)
    for number, row in enumerate(rows):
        own = row[shared:]
        input_ids[number, :shared] = torch.tensor(row[:shared], dtype=torch.long)
        input_ids[number, shared + width - len(own) :] = torch.tensor(own, dtype=torch.long)
        mask[number, :shared] = 1
        mask[number, shared + width - len(own) :] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def prefix_cache(model: Any, prefix: Sequence[int], copies: int, device: torch.device) -> Any:
    """The KV cache of `prefix`, computed once and repeated for `copies` rows (transformers'
    prefix caching; the first `len(prefix)` input tokens of every row must be the prefix)."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    ids = torch.tensor([list(prefix)], dtype=torch.long, device=device)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), cache_keyword(model): cache}
    model(**inputs, use_cache=True, logits_to_keep=1)
    cache.batch_repeat_interleave(copies)
    return cache


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

    Each distinct prompt is tokenized once (all in one call) and generated once. Batches
    gather prompts that share a prefix (`plan_batches`); the prefix is run through the model
    once per batch and its KV cache reused by every row, and the rows' own tokens are
    left-padded after it. Pass `add_special_tokens=False` for chat-templated prompts, which
    already hold them.
    """
    unique = list(dict.fromkeys(prompts))
    if not unique:
        return []
    rows = tokenizer(unique, add_special_tokens=add_special_tokens)["input_ids"]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    texts: dict[str, str] = {}
    for chosen in plan_batches(rows, batch_size, max_new_tokens):
        batch = [rows[i] for i in chosen]
        shared = shared_prefix(batch)
        encoded = {key: value.to(device) for key, value in pad_after_prefix(batch, shared, pad_id).items()}
        cache = {cache_keyword(model): prefix_cache(model, batch[0][:shared], len(batch), device)} if shared else {}
        generated = model.generate(
            **encoded, **cache, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id
        )
        new_tokens = generated[:, encoded["input_ids"].shape[1] :]
        for index, row in zip(chosen, tokenizer.batch_decode(new_tokens, skip_special_tokens=True)):
            texts[unique[index]] = truncate_at_stops(row, stops)
    return [texts[prompt] for prompt in prompts]
