"""One fine-tuning loop shared by the CPT editors and `ripplebench sft-qa`.

Examples are (prompt, completion) pairs: the loss covers the completion's tokens only, so an
example with an empty prompt is plain continued pretraining (next-token loss on all of it) and
one with a question as prompt is supervised QA fine-tuning. Batches are right-padded; a batch
larger than `micro_batch_size` is split and its gradients accumulated, which gives the same
update as one big batch (each token weighs the same) in less memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import torch
from tqdm import tqdm


@dataclass
class TrainingSettings:
    """Optimiser settings; the defaults are the paper's Table 24 (CPT on one fact)."""

    lr: float = 1e-5
    epochs: int = 4
    batch_size: int = 1
    micro_batch_size: int = 16
    max_length: int = 1024
    weight_decay: float = 0.1
    max_grad_norm: float = 1.0
    scheduler: str = "linear"
    warmup_ratio: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class Example:
    """A training example; the loss is on `completion` (on everything when `prompt` is empty).

    `special_tokens=False` marks a prompt that already holds them (e.g. chat-templated text).
    """

    prompt: str
    completion: str
    special_tokens: bool = True


def encode(tokenizer: Any, example: Example, max_length: int, add_eos: bool = False) -> tuple[list[int], list[int]]:
    """Token ids and labels (-100 on the prompt) of one example, truncated to `max_length`.

    The completion is tokenized on its own and appended to the prompt's tokens, so the
    prompt/answer boundary is exact.
    """
    if not example.prompt:
        ids = tokenizer(example.completion, add_special_tokens=example.special_tokens)["input_ids"]
        labels = list(ids)
    else:
        prompt = tokenizer(example.prompt, add_special_tokens=example.special_tokens)["input_ids"]
        answer = tokenizer(example.completion, add_special_tokens=False)["input_ids"]
        ids = prompt + answer
        labels = [-100] * len(prompt) + answer
    if add_eos and tokenizer.eos_token_id is not None:
        ids, labels = ids + [tokenizer.eos_token_id], labels + [tokenizer.eos_token_id]
    return ids[:max_length], labels[:max_length]


def pad_rows(
    rows: Sequence[tuple[list[int], list[int]]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack (ids, labels) rows, right-padded: input ids, attention mask, labels (-100 on padding)."""
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (ids, row_labels) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(ids)] = torch.tensor(row_labels)
        mask[row, : len(ids)] = 1
    return input_ids, mask, labels


def _collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    input_ids, mask, labels = pad_rows(rows, pad_id)
    return {"input_ids": input_ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def _optimizer(parameters: list[torch.nn.Parameter], settings: TrainingSettings) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices only (not on norms and biases)."""
    return torch.optim.AdamW(
        [
            {"params": [p for p in parameters if p.ndim >= 2], "weight_decay": settings.weight_decay},
            {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=settings.lr,
    )


def count_tokens(tokenizer: Any, examples: Iterable[Example], max_length: int, add_eos: bool = False) -> int:
    """Tokens of one pass over `examples` (prompt and completion), as `train` would see them."""
    return sum(len(encode(tokenizer, example, max_length, add_eos)[0]) for example in examples)


def train(
    network: torch.nn.Module,
    tokenizer: Any,
    examples: Sequence[Example],
    parameters: Sequence[torch.nn.Parameter],
    settings: TrainingSettings,
    *,
    add_eos: bool = False,
    progress: bool = False,
    shuffle: bool = False,
) -> int:
    """Fine-tune `parameters` of `network` on `examples`; return the tokens processed.

    Examples keep their order unless `shuffle` (seeded by `settings.seed`, new order each
    epoch). The caller chooses which parameters train and undoes the change if it wants to;
    `requires_grad` flags and train/eval mode are restored here, also on errors.
    """
    if not examples:
        raise ValueError("Nothing to train on: the list of training examples is empty.")
    from transformers import get_scheduler

    rows = [encode(tokenizer, example, settings.max_length, add_eos) for example in examples]
    batches_per_epoch = math.ceil(len(rows) / settings.batch_size)
    steps = settings.epochs * batches_per_epoch
    parameters = list(parameters)
    optimizer = _optimizer(parameters, settings)
    scheduler = get_scheduler(
        settings.scheduler,
        optimizer,
        num_warmup_steps=math.ceil(settings.warmup_ratio * steps),
        num_training_steps=steps,
    )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(network.parameters()).device
    generator = torch.Generator().manual_seed(settings.seed)
    trained = {id(p) for p in parameters}
    flags = [(p, p.requires_grad) for p in network.parameters()]
    was_training = network.training
    for parameter, _ in flags:
        parameter.requires_grad_(id(parameter) in trained)
    network.train()
    tokens = 0
    bar = tqdm(total=steps, desc="training", unit="step", disable=not progress)
    try:
        for _ in range(settings.epochs):
            order = torch.randperm(len(rows), generator=generator).tolist() if shuffle else range(len(rows))
            ordered = [rows[i] for i in order]
            for start in range(0, len(ordered), settings.batch_size):
                batch = ordered[start : start + settings.batch_size]
                targets = sum(sum(label != -100 for label in labels[1:]) for _, labels in batch)
                for micro in range(0, len(batch), settings.micro_batch_size):
                    encoded = _collate(batch[micro : micro + settings.micro_batch_size], pad_id, device)
                    # The model averages over its own predicted tokens; reweight so that the
                    # accumulated gradient is the average over the whole batch's tokens.
                    share = int((encoded["labels"][:, 1:] != -100).sum())
                    if share == 0:  # e.g. a completion truncated away: nothing to learn from
                        continue
                    loss = network(**encoded).loss
                    (loss * (share / targets)).backward()
                    loss = loss.detach()
                    tokens += int(encoded["attention_mask"].sum())
                torch.nn.utils.clip_grad_norm_(parameters, settings.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                bar.update()
                if targets:
                    bar.set_postfix(loss=f"{float(loss):.3f}")
    finally:
        bar.close()
        network.train(was_training)
        for parameter, flag in flags:
            parameter.requires_grad_(flag)
            parameter.grad = None
    return tokens
