"""Token batches and losses of the inner and outer loops.

- inner `clm`: -log p(f), every token of the fact text (PropMEND, eq. 3);
- inner `sft`: -log p(y | x) on the edit's atomic facts, answer tokens only (classic MEND);
- outer edit loss: -log p(a | q), answer tokens only, for propagation questions (PropMEND,
  eq. 2) or paraphrased atomic-fact prompts (MEND);
- locality: KL(p_W(.|x_loc) || p_W~(.|x_loc)) on the answer tokens of unrelated questions.

Losses are token means, as in the MEND/PropMEND reference code (c_edit was tuned with them).
Batches are right-padded so that position ids need no adjustment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ripplebench.core.prompts import render_prompt
from ripplebench.editors.base import Edit
from ripplebench.editors.training import pad_rows

INNER_LOSSES = ("clm", "sft")
OUTER_LOSSES = ("propagation", "paraphrase")


@dataclass
class TokenBatch:
    """Right-padded token ids with labels (-100 where no loss is taken)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def model_inputs(self, device: torch.device | str) -> dict[str, torch.Tensor]:
        """The model's keyword inputs, on `device`."""
        return {"input_ids": self.input_ids.to(device), "attention_mask": self.attention_mask.to(device)}


def _ids(tokenizer: Any, text: str, special: bool) -> list[int]:
    return tokenizer(text, add_special_tokens=special)["input_ids"]


def _pad(rows: list[tuple[list[int], list[int]]], pad_id: int, max_length: int) -> TokenBatch:
    """Stack (ids, labels) rows, truncated from the left to `max_length`, padded on the right."""
    input_ids, mask, labels = pad_rows([(ids[-max_length:], labels[-max_length:]) for ids, labels in rows], pad_id)
    return TokenBatch(input_ids, mask, labels)


def text_batch(tokenizer: Any, texts: Sequence[str], max_length: int = 256) -> TokenBatch:
    """Causal LM batch: a loss on every token of each text."""
    rows = []
    for text in texts:
        ids = _ids(tokenizer, text, special=True)
        rows.append((ids, list(ids)))
    return _pad(rows, tokenizer.pad_token_id, max_length)


def pair_batch(
    tokenizer: Any, prompts: Sequence[str], answers: Sequence[str], chat: bool = False, max_length: int = 256
) -> TokenBatch:
    """Prompt + answer batch with the loss on answer tokens only.

    `chat` prompts already carry the template's special tokens, so none are added.
    """
    rows = []
    for prompt, answer in zip(prompts, answers):
        prompt_ids = _ids(tokenizer, prompt, special=not chat)
        answer_ids = _ids(tokenizer, answer, special=False)
        rows.append((prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids))
    return _pad(rows, tokenizer.pad_token_id, max_length)


def question_batch(
    tokenizer: Any, prompt_format: str, questions: Sequence[str], answers: Sequence[str], max_length: int = 256
) -> TokenBatch:
    """Questions rendered in the evaluation's prompt format, answers as the model should reply."""
    prompts = [render_prompt(prompt_format, tokenizer, question) for question in questions]
    separator = "" if prompt_format == "chat" else " "
    return pair_batch(tokenizer, prompts, [separator + a for a in answers], prompt_format == "chat", max_length)


def inner_batch(tokenizer: Any, edits: Sequence[Edit], kind: str, max_length: int = 256) -> TokenBatch:
    """The batch whose loss gradient the hypernetwork transforms."""
    if kind == "clm":
        return text_batch(tokenizer, [edit.fact for edit in edits], max_length)
    if kind == "sft":
        facts = [fact for edit in edits for fact in edit.atomic_facts]
        missing = [edit.id for edit in edits if not edit.atomic_facts]
        if missing:
            raise ValueError(
                f"Inner loss 'sft' needs atomic facts (prompt, target); edit(s) {', '.join(missing)} "
                "have none. Use inner_loss 'clm' or data with 'atomic_facts'."
            )
        return pair_batch(tokenizer, [f.prompt for f in facts], [" " + f.target for f in facts], max_length=max_length)
    raise ValueError(f"Unknown inner loss '{kind}'. Valid: {', '.join(INNER_LOSSES)}.")


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of the labelled tokens (labels are shifted here)."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100)


def locality_kl(base_logits: torch.Tensor, edited_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """KL(base || edited) of next-token distributions, averaged over the labelled positions."""
    mask = (labels[:, 1:] != -100).flatten()
    base = base_logits[:, :-1].flatten(0, 1)[mask].float().log_softmax(-1)
    edited = edited_logits[:, :-1].flatten(0, 1)[mask].float().log_softmax(-1)
    return (base.exp() * (base - edited)).sum(-1).mean()
