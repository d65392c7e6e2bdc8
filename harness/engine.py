"""The edit-then-query loop: apply an edit once, answer all its questions, revert, move on
(in-context editors: many edits' questions answered in shared batches)."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from tqdm import tqdm

from ripplebench.core.models import LoadedModel
from ripplebench.core.prompts import render_prompt
from ripplebench.editors.base import Edit, EditHandle, Editor
from ripplebench.harness.backends import Backend
from ripplebench.harness.backends.hf import HFBackend
from ripplebench.harness.journal import EditJournal


@dataclass(frozen=True)
class Query:
    """One question asked of the model after `edits` have been applied."""

    edits: tuple[Edit, ...]
    question: str
    stops: tuple[str, ...] = ()
    max_new_tokens: int = 20


def group_by_edits(queries: Sequence[Query]) -> dict[tuple[Edit, ...], list[int]]:
    """Indices of the queries sharing the same edits, in order of first appearance."""
    groups: dict[tuple[Edit, ...], list[int]] = defaultdict(list)
    for index, query in enumerate(queries):
        groups[query.edits].append(index)
    return dict(groups)


class EditThenQuery:
    """Runs queries against a model edited by `editor`, one edit group at a time.

    A weight editor goes through apply, answer, revert for each group. An in-context editor
    (`changes_weights = False`) never changes the model, so consecutive groups are applied
    (each apply only builds that group's context) and their questions answered together,
    `window_batches` batches' worth at a time (the hf backend plans the batches so that
    prompts sharing a prefix share its KV cache); every group's answers and statistics are
    still known, and yielded, as soon as its window is answered. The `backend` (default: hf
    decoding in batches of `batch_size`) answers, and hears of every apply and revert.
    """

    window_batches = 8

    def __init__(
        self,
        model: LoadedModel,
        editor: Editor,
        prompt_format: str,
        batch_size: int = 16,
        backend: Backend | None = None,
    ) -> None:
        self.model = model
        self.editor = editor
        self.prompt_format = prompt_format
        self.batch_size = batch_size
        self.backend = backend or HFBackend(model, batch_size)
        self.edit_stats: list[dict[str, Any]] = []  # each edit group's handle.stats, in order

    def answer(self, queries: Sequence[Query], context: str = "") -> list[str]:
        """Answer queries on the model as it is now, with `context` before each question."""
        return self.answer_each(queries, [context] * len(queries))

    def answer_each(self, queries: Sequence[Query], contexts: Sequence[str]) -> list[str]:
        """Answer queries on the model as it is now, `contexts[i]` before question i; one batched
        decoding pass per decoding setting (stops, max_new_tokens)."""
        answers: list[str] = [""] * len(queries)
        by_settings: dict[tuple, list[int]] = defaultdict(list)
        for index, query in enumerate(queries):
            by_settings[(query.stops, query.max_new_tokens)].append(index)
        tokenizer = self.model.tokenizer
        for (stops, max_new_tokens), indices in by_settings.items():
            prompts = [render_prompt(self.prompt_format, tokenizer, queries[i].question, contexts[i]) for i in indices]
            self.check_fits(prompts, max_new_tokens, queries[indices[0]].edits)
            outputs = self.backend.decode(
                prompts, max_new_tokens=max_new_tokens, stops=stops, add_special_tokens=self.prompt_format != "chat"
            )
            for index, output in zip(indices, outputs):
                answers[index] = output
        return answers

    def apply(self, edits: Sequence[Edit]) -> EditHandle:
        """Apply `edits` to the model, then to the backend; if the backend fails, the model is reverted."""
        handle = self.editor.apply(self.model, edits)
        try:
            self.backend.after_apply(handle)
        except BaseException:
            self.editor.revert(handle)  # the run stops; never leave the model edited
            raise
        return handle

    def revert(self, handle: EditHandle) -> None:
        """Undo `apply` in the backend, then in the model (in the model even if the backend fails)."""
        try:
            self.backend.before_revert(handle)
        finally:
            self.editor.revert(handle)

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
        groups = list(group_by_edits(queries).items())
        pending = []
        with tqdm(total=len(groups), desc="edits", unit="edit", disable=not progress) as bar:

            def keep(indices: list[int], outputs: Sequence[str], stats: dict[str, Any]) -> None:
                self.edit_stats.append(stats)
                for index, output in zip(indices, outputs):
                    answers[index] = output
                bar.update()

            for edits, indices in groups:
                done = journal.lookup(*self._journal_key(queries, edits, indices)) if journal is not None else None
                if done is None:
                    pending.append((edits, indices))
                else:
                    keep(indices, done.answers, done.edit_stats)
            for indices, outputs, stats in self.answered_groups(queries, pending):
                if journal is not None:
                    journal.record(*self._journal_key(queries, queries[indices[0]].edits, indices), outputs, stats)
                keep(indices, outputs, stats)
        return answers

    @staticmethod
    def _journal_key(
        queries: Sequence[Query], edits: tuple[Edit, ...], indices: list[int]
    ) -> tuple[list[str], list[str]]:
        """A group's journal identity: its edit ids and its questions, in order."""
        return [edit.id for edit in edits], [queries[i].question for i in indices]

    def answered_groups(
        self, queries: Sequence[Query], groups: Sequence[tuple[tuple[Edit, ...], list[int]]]
    ) -> Iterator[tuple[list[int], list[str], dict[str, Any]]]:
        """Each group's (query indices, answers, statistics), in order, as soon as it is finished."""
        if self.editor.changes_weights:
            for edits, indices in groups:
                yield indices, *self._edit_and_answer(queries, edits, indices)
            return
        window: list[tuple[tuple[Edit, ...], list[int]]] = []
        size = self.batch_size * self.window_batches
        for number, group in enumerate(groups):
            window.append(group)
            if number == len(groups) - 1 or sum(len(indices) for _, indices in window) >= size:
                yield from self._answer_in_context(queries, window)
                window = []

    def _edit_and_answer(
        self, queries: Sequence[Query], edits: tuple[Edit, ...], indices: list[int]
    ) -> tuple[list[str], dict[str, Any]]:
        started = time.perf_counter()
        handle = self.apply(edits)
        applied = time.perf_counter()
        try:
            outputs = self.answer([queries[i] for i in indices], handle.context)
        finally:
            answered = time.perf_counter()
            self.revert(handle)
        reverted = time.perf_counter()
        return outputs, {**handle.stats, **timing_stats(started, applied, answered, reverted)}

    def _answer_in_context(
        self, queries: Sequence[Query], window: Sequence[tuple[tuple[Edit, ...], list[int]]]
    ) -> Iterator[tuple[list[int], list[str], dict[str, Any]]]:
        """Answer a window of groups of an in-context editor in shared batches.

        Each group is applied and at once reverted (its handle's context is all that is
        needed); the window's answering time is shared out by question count.
        """
        handles, timings = [], []
        for edits, _ in window:
            started = time.perf_counter()
            handle = self.apply(edits)
            applied = time.perf_counter()
            self.revert(handle)
            handles.append(handle)
            timings.append((applied - started, time.perf_counter() - applied))
        flat = [index for _, indices in window for index in indices]
        contexts = [handle.context for handle, (_, indices) in zip(handles, window) for _ in indices]
        started = time.perf_counter()
        outputs = dict(zip(flat, self.answer_each([queries[i] for i in flat], contexts)))
        seconds = time.perf_counter() - started
        for handle, (edit_seconds, revert_seconds), (_, indices) in zip(handles, timings, window):
            stats = {
                **handle.stats,
                "edit_seconds": edit_seconds,
                "answer_seconds": seconds * len(indices) / len(flat),
                "revert_seconds": revert_seconds,
                "groups_per_batch_window": len(window),
            }
            yield indices, [outputs[i] for i in indices], stats


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
