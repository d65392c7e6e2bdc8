"""Does a decoding backend answer exactly as `backend=hf` does, edit by edit, and how fast?

Each edit group is applied once through the engine with the other backend (so its hooks follow
the edit, e.g. vLLM's weight push), its questions are answered by both backends in that same
edited state, and the edit is reverted. `benchmarks/vllm_check.py` and the real-vLLM tests use it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

from ripplebench.core.models import LoadedModel
from ripplebench.core.prompts import resolve_prompt_format
from ripplebench.editors.base import Editor
from ripplebench.harness.backends import Backend
from ripplebench.harness.engine import EditThenQuery, Query, group_by_edits


@dataclass(frozen=True)
class Difference:
    """One question the two backends answered differently."""

    edit_id: str
    question: str
    hf_answer: str
    other_answer: str


@dataclass
class Agreement:
    """The differing answers of one editor's run and each backend's decoding seconds."""

    questions: int = 0
    differences: list[Difference] = field(default_factory=list)
    hf_seconds: float = 0.0
    other_seconds: float = 0.0

    @property
    def speed_ratio(self) -> float:
        """HF decoding time over the other backend's (edits excluded)."""
        return self.hf_seconds / max(self.other_seconds, 1e-9)


def compare_with_hf(
    loaded: LoadedModel, editor: Editor, backend: Backend, queries: Sequence[Query], batch_size: int
) -> Agreement:
    """Apply each edit group of `queries` once and answer it with both backends (see module doc)."""
    prompt_format = resolve_prompt_format("auto", loaded.tokenizer)
    hf = EditThenQuery(loaded, editor, prompt_format, batch_size)
    other = EditThenQuery(loaded, editor, prompt_format, batch_size, backend=backend)
    result = Agreement(questions=len(queries))
    for edits, indices in group_by_edits(queries).items():
        group = [queries[i] for i in indices]
        handle = other.apply(edits)  # the HF copy and the other backend both edited
        try:
            started = time.perf_counter()
            hf_answers = hf.answer(group, handle.context)
            middle = time.perf_counter()
            other_answers = other.answer(group, handle.context)
            result.other_seconds += time.perf_counter() - middle
            result.hf_seconds += middle - started
        finally:
            other.revert(handle)
        result.differences += [
            Difference(edits[0].id, query.question, hf_answer, other_answer)
            for query, hf_answer, other_answer in zip(group, hf_answers, other_answers)
            if hf_answer != other_answer
        ]
    return result


def task_queries(task: str, limit: int, max_new_tokens: int = 20) -> list[Query]:
    """The task's first `limit` documents as engine queries, built as `--model editing` builds them."""
    from lm_eval.tasks import TaskManager

    from ripplebench.harness.lm_model import query_from_request
    from ripplebench.harness.registration import TASKS_DIR

    loaded = TaskManager(include_path=str(TASKS_DIR), include_defaults=False).load([task])["tasks"][task]
    loaded.build_all_requests(limit=limit, rank=0, world_size=1)
    return [query_from_request(instance, max_new_tokens) for instance in loaded.instances]
