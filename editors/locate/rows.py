"""Atomic facts as token rows: prompt (after an optional prefix), then the target's tokens.

Each row records two positions: the subject's last token (where MEMIT reads keys and adds its
residual) and the prompt's last token (the prediction position, where JEEP's high layers act).
Rows are right-padded, so positions count from the start and padding never shifts them.
`split_rows` cuts rows at a token so that v* can compute the part before the cut once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..base import AtomicFact, Edit

POSITIONS = ("subject_last", "prompt_last")


def atomic_facts(edits: Sequence[Edit]) -> list[AtomicFact]:
    """All (prompt, target, subject) triples of the edits, checked for use by MEMIT-style editors."""
    facts = []
    for edit in edits:
        if not edit.atomic_facts:
            raise ValueError(
                f"Edit '{edit.id}' has no atomic facts: MEMIT, AlphaEdit and JEEP edit (prompt, "
                "target, subject) triples, so the task must provide 'atomic_facts' for each edit."
            )
        for fact in edit.atomic_facts:
            if not fact.subject or fact.subject not in fact.prompt:
                raise ValueError(
                    f"Edit '{edit.id}': the subject '{fact.subject}' is not a substring of the prompt '{fact.prompt}'."
                )
            if not fact.target.strip():
                raise ValueError(f"Edit '{edit.id}': the atomic fact '{fact.prompt}' has an empty target.")
            facts.append(fact)
    return facts


def target_ids(tokenizer: Any, target: str) -> list[int]:
    """Token ids of a target as it continues a prompt (with its leading space)."""
    return tokenizer(" " + target.strip(), add_special_tokens=False)["input_ids"]


@dataclass
class Rows:
    """A right-padded batch of rows; `fact` says which fact each row belongs to."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    fact: torch.Tensor
    subject_last: torch.Tensor
    prompt_last: torch.Tensor
    # -100 except at positions whose next token is a target token (teacher forcing).
    labels: torch.Tensor

    def position(self, kind: str) -> torch.Tensor:
        if kind not in POSITIONS:
            raise ValueError(f"Unknown token position '{kind}'. Valid: {', '.join(POSITIONS)}.")
        return getattr(self, kind)

    def to(self, device: torch.device) -> Rows:
        return Rows(*(getattr(self, name).to(device) for name in self.__dataclass_fields__))


def _subject_last_token(offsets: list[tuple[int, int]], subject_end: int) -> int:
    """Index of the last token that starts before the subject's last character ends."""
    starts = [index for index, (start, end) in enumerate(offsets) if end > start and start < subject_end]
    return starts[-1]


def encode_rows(
    tokenizer: Any,
    facts: Sequence[AtomicFact],
    prefixes: Sequence[str] = ("",),
    with_targets: bool = True,
) -> Rows:
    """One row per (fact, prefix), fact-major: prefix + prompt [+ target tokens but the last]."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("Locate-then-edit editors need a fast tokenizer (offsets locate the subject).")
    sequences, facts_of, subject_last, prompt_last, labels = [], [], [], [], []
    for number, fact in enumerate(facts):
        targets = target_ids(tokenizer, fact.target) if with_targets else []
        for prefix in prefixes:
            text = prefix + fact.prompt
            subject_end = len(prefix) + fact.prompt.index(fact.subject) + len(fact.subject)
            encoded = tokenizer(text, return_offsets_mapping=True)
            prompt_ids = encoded["input_ids"]
            sequences.append(prompt_ids + targets[:-1])
            labels.append([-100] * (len(prompt_ids) - 1) + (targets or [-100]))
            facts_of.append(number)
            subject_last.append(_subject_last_token(encoded["offset_mapping"], subject_end))
            prompt_last.append(len(prompt_ids) - 1)
    width = max(len(ids) for ids in sequences)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def padded(rows: list[list[int]], value: int) -> torch.Tensor:
        return torch.tensor([row + [value] * (width - len(row)) for row in rows])

    return Rows(
        input_ids=padded(sequences, pad),
        attention_mask=padded([[1] * len(ids) for ids in sequences], 0),
        fact=torch.tensor(facts_of),
        subject_last=torch.tensor(subject_last),
        prompt_last=torch.tensor(prompt_last),
        labels=padded(labels, -100),
    )


def concat_rows(first: Rows, second: Rows, pad_id: int) -> Rows:
    """Stack two batches of rows into one, right-padding the narrower one."""
    width = max(first.input_ids.shape[1], second.input_ids.shape[1])

    def widen(tensor: torch.Tensor, value: int) -> torch.Tensor:
        return torch.nn.functional.pad(tensor, (0, width - tensor.shape[1]), value=value)

    return Rows(
        input_ids=torch.cat([widen(first.input_ids, pad_id), widen(second.input_ids, pad_id)]),
        attention_mask=torch.cat([widen(first.attention_mask, 0), widen(second.attention_mask, 0)]),
        fact=torch.cat([first.fact, second.fact]),
        subject_last=torch.cat([first.subject_last, second.subject_last]),
        prompt_last=torch.cat([first.prompt_last, second.prompt_last]),
        labels=torch.cat([widen(first.labels, -100), widen(second.labels, -100)]),
    )


@dataclass
class SplitRows:
    """Rows cut at one token each: `past` holds the tokens before the cut, left-padded so that
    every row's cut falls on the same column; `current` holds the rest as right-padded Rows whose
    positions count from the cut; `positions` are the current tokens' positions in the uncut rows."""

    past_ids: torch.Tensor
    past_mask: torch.Tensor
    past_positions: torch.Tensor
    current: Rows
    positions: torch.Tensor

    @property
    def attention_mask(self) -> torch.Tensor:
        """The mask over past and current tokens together, as a forward pass with a cache takes it."""
        return torch.cat([self.past_mask, self.current.attention_mask], dim=1)


def split_rows(rows: Rows, cut: torch.Tensor, pad_id: int) -> SplitRows:
    """Cut each row just before its token at index `cut[row]`."""
    lengths = rows.attention_mask.sum(1)
    if bool(((cut < 0) | (cut >= lengths)).any()):
        raise ValueError(f"Cuts {cut.tolist()} must each name a token of its row (lengths {lengths.tolist()}).")
    count, before, after = len(lengths), int(cut.max()), int((lengths - cut).max())

    def filled(width: int, value: int) -> torch.Tensor:
        return torch.full((count, width), value, dtype=rows.input_ids.dtype, device=rows.input_ids.device)

    past_ids, past_mask, past_positions = filled(before, pad_id), filled(before, 0), filled(before, 0)
    ids, mask, labels = filled(after, pad_id), filled(after, 0), filled(after, -100)
    for row, (start, length) in enumerate(zip(cut.tolist(), lengths.tolist())):
        past_ids[row, before - start :] = rows.input_ids[row, :start]
        past_mask[row, before - start :] = 1
        past_positions[row, before - start :] = torch.arange(start)
        ids[row, : length - start] = rows.input_ids[row, start:length]
        mask[row, : length - start] = 1
        labels[row, : length - start] = rows.labels[row, start:length]
    current = Rows(ids, mask, rows.fact, rows.subject_last - cut, rows.prompt_last - cut, labels)
    positions = cut.unsqueeze(1) + torch.arange(after, device=cut.device)
    return SplitRows(past_ids, past_mask, past_positions, current, positions)
