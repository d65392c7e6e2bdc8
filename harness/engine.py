"""The edit-then-query loop: apply an edit once, answer all its questions, revert, move on."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from tqdm import tqdm

from ripplebench.editors.base import AtomicFact, Edit, Editor
from ripplebench.harness.generation import Decode, greedy_generate
from ripplebench.harness.journal import EditJournal
from ripplebench.harness.models import LoadedModel
from ripplebench.harness.prompts import render_prompt


@dataclass(frozen=True)
class Query:
    """One question asked of the model after `edits` have been applied."""

    edits: tuple[Edit, ...]
    question: str
    stops: tuple[str, ...] = ()
    max_new_tokens: int = 20


def edit_from_record(record: Mapping[str, Any]) -> Edit:
    """Build an Edit from a document's edit fields (`edit_id`, `fact`, ...)."""
    atomic = tuple(
        AtomicFact(item["prompt"], item["target"], item["subject"])
        for item in record.get("atomic_facts") or ()
    )
    return Edit(
        id=str(record["edit_id"]),
        fact=record["fact"],
        atomic_facts=atomic,
        subject_type=record.get("subject_type") or "",
    )


def edits_from_doc(doc: Mapping[str, Any], where: str) -> tuple[Edit, ...]:
    """The edits a task document carries: one (`edit_id`, `fact`) or several (`edits`).

    `where` names the document in the error raised when it carries none.
    """
    records = doc.get("edits") if isinstance(doc, Mapping) and "edits" in doc else [doc]
    edits = []
    for record in records or ():
        if not isinstance(record, Mapping) or not record.get("edit_id") or not str(record.get("fact") or "").strip():
            raise ValueError(
                f"{where} carries no edit: the editing model needs 'edit_id' and a non-empty "
                "'fact' (or a list 'edits' of such records). Only ripplebench tasks provide them."
            )
        edits.append(edit_from_record(record))
    if not edits:
        raise ValueError(f"{where} has an empty 'edits' list.")
    return tuple(edits)


def group_by_edits(queries: Sequence[Query]) -> dict[tuple[Edit, ...], list[int]]:
    """Indices of the queries sharing the same edits, in order of first appearance."""
    groups: dict[tuple[Edit, ...], list[int]] = defaultdict(list)
    for index, query in enumerate(queries):
        groups[query.edits].append(index)
    return dict(groups)


class EditThenQuery:
    """Runs queries against a model edited by `editor`, one edit group at a time.

    `decode` answers rendered prompts; the default is transformers' greedy generate on `model`
    (harness/vllm_backend.py provides the vLLM one).
    """

    def __init__(
        self,
        model: LoadedModel,
        editor: Editor,
        prompt_format: str,
        batch_size: int = 16,
        decode: Decode | None = None,
    ) -> None:
        self.model = model
        self.editor = editor
        self.prompt_format = prompt_format
        self.batch_size = batch_size
        self.decode = decode or self.hf_decode
        self.edit_stats: list[dict[str, Any]] = []  # each edit group's handle.stats, in order

    def answer(self, queries: Sequence[Query], context: str) -> list[str]:
        """Answer queries on the model as it is now, batching those with equal decoding settings."""
        answers: list[str] = [""] * len(queries)
        by_settings: dict[tuple, list[int]] = defaultdict(list)
        for index, query in enumerate(queries):
            by_settings[(query.stops, query.max_new_tokens)].append(index)
        tokenizer = self.model.tokenizer
        for (stops, max_new_tokens), indices in by_settings.items():
            prompts = [
                render_prompt(self.prompt_format, tokenizer, queries[i].question, context) for i in indices
            ]
            self.check_fits(prompts, max_new_tokens, queries[indices[0]].edits)
            outputs = self.decode(
                prompts, max_new_tokens=max_new_tokens, stops=stops, add_special_tokens=self.prompt_format != "chat"
            )
            for index, output in zip(indices, outputs):
                answers[index] = output
        return answers

    def hf_decode(
        self, prompts: Sequence[str], *, max_new_tokens: int, stops: Sequence[str], add_special_tokens: bool
    ) -> list[str]:
        """Greedy answers from the HF model itself, in batches of `batch_size`."""
        return greedy_generate(
            self.model.model,
            self.model.tokenizer,
            prompts,
            max_new_tokens=max_new_tokens,
            stops=stops,
            batch_size=self.batch_size,
            add_special_tokens=add_special_tokens,
        )

    def check_fits(self, prompts: Sequence[str], max_new_tokens: int, edits: Sequence[Edit]) -> None:
        """Refuse prompts that, with the answer, would not fit the model's context window.

        Nothing is truncated: cutting an in-context editor's facts would silently change the
        experiment (e.g. prepend on a large edit group).
        """
        window = context_window(self.model.model.config)
        if window is None:
            return
        add_special_tokens = self.prompt_format != "chat"
        tokenizer = self.model.tokenizer
        longest = max(len(tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]) for prompt in prompts)
        if longest + max_new_tokens > window:
            names = ", ".join(edit.id for edit in edits[:3]) + (f" and {len(edits) - 3} more" if len(edits) > 3 else "")
            raise ValueError(
                f"The prompt for edits {names} is {longest} tokens; with {max_new_tokens} new tokens it "
                f"exceeds the model's context window of {window} tokens. Use fewer edits per group "
                "(e.g. a _multi10 task instead of _multi20), a shorter max_new_tokens, or a model "
                "with a longer window."
            )

    def run(self, queries: Sequence[Query], progress: bool = True, journal: EditJournal | None = None) -> list[str]:
        """Answer every query after applying its edits; the model is restored after each group.

        With a `journal`, groups it already holds are answered from it (the editor is not
        applied) and every other group is journaled as soon as it is answered.
        """
        answers: list[str] = [""] * len(queries)
        groups = group_by_edits(queries)
        for edits, indices in tqdm(groups.items(), desc="edits", unit="edit", disable=not progress):
            group = [queries[i] for i in indices]
            edit_ids = [edit.id for edit in edits]
            questions = [query.question for query in group]
            done = journal.lookup(edit_ids, questions) if journal is not None else None
            if done is not None:
                outputs, stats = list(done.answers), done.edit_stats
            else:
                outputs, stats = self.edit_and_answer(edits, group)
                if journal is not None:
                    journal.record(edit_ids, questions, outputs, stats)
            self.edit_stats.append(stats)
            for index, output in zip(indices, outputs):
                answers[index] = output
        return answers

    def edit_and_answer(self, edits: tuple[Edit, ...], group: Sequence[Query]) -> tuple[list[str], dict[str, Any]]:
        """Apply `edits`, answer `group`, revert; the answers and the group's edit_stats."""
        started = time.perf_counter()
        handle = self.editor.apply(self.model, edits)
        applied = time.perf_counter()
        try:
            outputs = self.answer(group, handle.context)
        finally:
            answered = time.perf_counter()
            self.editor.revert(handle)
        reverted = time.perf_counter()
        return outputs, {**handle.stats, **timing_stats(started, applied, answered, reverted)}


def context_window(config: Any) -> int | None:
    """The most tokens the model attends to (prompt and answer), if its config says."""
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def timing_stats(started: float, applied: float, answered: float, reverted: float) -> dict[str, float]:
    """Wall seconds of one edit group's phases, as recorded in `edit_stats` (and so in results)."""
    return {
        "edit_seconds": applied - started,
        "answer_seconds": answered - applied,
        "revert_seconds": reverted - answered,
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB, macOS bytes)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def summarize_edit_stats(stats: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The mean of each numeric statistic over edit groups (e.g. `train_tokens`, `tokens_vs_cpt`);
    flags such as `oracle` are kept when every group sets them."""
    summary: dict[str, Any] = {"edit_groups": len(stats)}
    keys = dict.fromkeys(key for record in stats for key in record)
    for key in keys:
        values = [record[key] for record in stats if key in record]
        if all(isinstance(v, bool) for v in values):
            summary[key] = all(values) and len(values) == len(stats)
        elif all(isinstance(v, (int, float)) for v in values):
            summary[f"{key}_mean"] = round(sum(values) / len(values), 3)
    return summary
