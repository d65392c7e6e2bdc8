"""The lm-eval model type `editing`: a base model plus an editor, run edit-then-query.

    lm_eval --model editing \
        --model_args model=smollm2-135m,editor=prepend \
        --tasks controlled_ripple_id --batch_size 16

Model args: `model` (alias, Hugging Face id, folder or .gguf path), `gguf_file`, `editor`
(name or preset), `editor_config` (YAML file), `editor.<field>=value` (config overrides),
`prompt_format` (auto, chat, qa, raw), `max_new_tokens` (default 20, as in the paper),
`dtype`, `device`, `cache_dir`, `backend` (hf, or vllm on a GPU or the CPU: harness/backends/) with
its `gpu_memory_utilization` and `max_model_len`, `journal` (folder of the answered-groups
journals; by default they live in the cache folder until the run is done: harness/task_journal.py)
and `resume` (default true; false discards the journal and starts fresh).

The model args are checked in harness/model_args.py, the journals kept by harness/task_journal.py,
and the run's manifest built by harness/manifest.py.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

from lm_eval.api.model import LM

from ripplebench.core.models import LoadedModel, load_config, load_model, resolve_model, weights_dir, weights_identity
from ripplebench.core.prompts import resolve_prompt_format
from ripplebench.editors.registry import build_editor
from ripplebench.harness.backends import Backend, build_backend, configure_backend
from ripplebench.harness.documents import edits_from_doc
from ripplebench.harness.engine import EditThenQuery, Query, peak_rss_mb, summarize_edit_stats
from ripplebench.harness.journal import digest
from ripplebench.harness.manifest import build_manifest
from ripplebench.harness.model_args import (
    DEFAULT_BATCH_SIZE,
    check_prompt_format,
    editor_overrides,
    judge_args,
    parse_batch_size,
    pick_device,
)
from ripplebench.harness.task_journal import TaskJournals


def query_from_request(request: Any, max_new_tokens: int) -> Query:
    """The engine's Query for one lm-eval generate_until request (its doc carries the edits)."""
    context, gen_kwargs = request.args
    gen_kwargs = dict(gen_kwargs or {})
    until = gen_kwargs.get("until") or []
    return Query(
        edits=edits_from_doc(request.doc, f"Document {request.doc_id} of task '{request.task_name}'"),
        question=context,
        stops=tuple([until] if isinstance(until, str) else until),
        max_new_tokens=int(gen_kwargs.get("max_gen_toks", max_new_tokens)),
    )


class EditingLM(LM):
    """Applies each document's edit, answers that edit's questions greedily, reverts."""

    def __init__(
        self,
        model: str = "smollm2-135m",
        editor: str | None = "none",
        editor_config: str | None = None,
        gguf_file: str | None = None,
        prompt_format: str = "auto",
        max_new_tokens: int = 20,
        dtype: str = "float32",
        device: str | None = None,
        cache_dir: str | None = None,
        batch_size: int | str | None = DEFAULT_BATCH_SIZE,
        max_batch_size: int | None = None,
        backend: str = "hf",
        gpu_memory_utilization: float | None = None,
        max_model_len: int | None = None,
        journal: str | None = None,
        resume: bool | str = True,
        **extra: Any,
    ) -> None:
        super().__init__()
        overrides = editor_overrides(extra)
        self.judge_args = judge_args(extra)
        self.backend = str(backend)
        # Checked (and, for vllm, vLLM's presence) before any model work.
        self.backend_settings = configure_backend(
            self.backend, gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len
        )
        check_prompt_format(prompt_format)
        # lm-eval parses the string "none" as None.
        self.editor_name = "none" if editor is None else str(editor)
        self.editor = build_editor(self.editor_name, overrides, editor_config)
        self.source = resolve_model(str(model), gguf_file, cache_dir)
        self.cache_dir = cache_dir
        # Cheap checks against the model's config come before any weights are loaded.
        self.editor.check(load_config(self.source, cache_dir))
        self.requested_prompt_format = prompt_format
        self.max_new_tokens = int(max_new_tokens)
        self.dtype = dtype
        self.device_name = pick_device(device)
        self.batch = parse_batch_size(batch_size)
        self._loaded: LoadedModel | None = None
        self._decoder: Backend | None = None
        self.edit_stats: list[dict[str, Any]] = []
        self.task_journals = TaskJournals(journal or None, resume)
        self.task_data: dict[str, str] = {}  # each task's documents digest, for the manifest

    @property
    def loaded(self) -> LoadedModel:
        """The model, loaded on first use so that bad task data fails before this work."""
        if self._loaded is None:
            self._loaded = load_model(self.source, dtype=self.dtype, device=self.device_name, cache_dir=self.cache_dir)
        return self._loaded

    @property
    def decoder(self) -> Backend:
        """The decoding backend, started after the HF copy is loaded (vLLM goes next to it)."""
        if self._decoder is None:
            folder = weights_dir(self.source, self.cache_dir)
            self._decoder = build_backend(
                self.backend, self.loaded, self.backend_settings, folder=folder, dtype=self.dtype, batch_size=self.batch
            )
        return self._decoder

    @property
    def prompt_format(self) -> str:
        return resolve_prompt_format(self.requested_prompt_format, self.loaded.tokenizer)

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Answer each task's requests in turn, each task with its journal."""
        answers: list[str] = [""] * len(requests)
        by_task: dict[str, list[int]] = defaultdict(list)
        for index, request in enumerate(requests):
            by_task[request.task_name].append(index)
        for task, indices in by_task.items():
            task_requests = [requests[i] for i in indices]
            queries = [query_from_request(request, self.max_new_tokens) for request in task_requests]
            engine = EditThenQuery(self.loaded, self.editor, self.prompt_format, self.batch, backend=self.decoder)
            key = self.journal_key(task, task_requests, queries)
            self.task_data[task] = key["data"]  # the manifest names the task data as the journal does
            with self.task_journals.open(task, key) as journal:
                outputs = engine.run(queries, progress=not disable_tqdm, journal=journal)
            self.edit_stats.extend(engine.edit_stats)
            for index, output in zip(indices, outputs):
                answers[index] = output
        self.task_journals.remove_answered()
        return answers

    def journal_key(self, task: str, requests, queries: list[Query]) -> dict[str, Any]:
        """Everything an answer depends on: model, editor config, task and its data, decoding."""
        return {
            "model": weights_identity(self.source),
            "editor": self.editor_name,
            "editor_class": type(self.editor).__name__,
            "editor_config": dataclasses.asdict(self.editor.config),
            "task": task,
            "data": digest([(r.doc_id, r.doc, r.args) for r in requests]),
            "prompt_format": self.prompt_format,
            "decoding": sorted({(q.stops, q.max_new_tokens) for q in queries}),
            "batch_size": self.batch,
            "dtype": self.dtype,
            "device": self.device_name.split(":")[0],
            "backend": self.backend,
        }

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError(
            "--model editing answers generation tasks (output_type generate_until) only, "
            "such as controlled_ripple_*; use --model hf for loglikelihood tasks."
        )

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        return self.loglikelihood(requests, disable_tqdm)

    def set_cache_hook(self, cache_hook) -> None:
        # lm-eval's response cache (--use_cache) keys a request on its prompt alone, so the same
        # question asked under two different edits would share one cached answer.
        if getattr(cache_hook, "dbdict", None) is not None:
            raise ValueError(
                "--use_cache is not supported with --model editing: lm-eval's response cache keys "
                "answers on the prompt alone, so the same question under different edits would "
                "collide. Drop --use_cache (reruns regenerate; greedy decoding reproduces them)."
            )
        super().set_cache_hook(cache_hook)

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        if chat_template:
            raise ValueError(
                "--apply_chat_template is not used with --model editing: it formats prompts "
                "itself so editors can place text inside the user turn. Use "
                "--model_args ...,prompt_format=chat (default 'auto' picks chat when the "
                "tokenizer has a template)."
            )
        return ""

    def get_model_info(self) -> dict[str, Any]:
        """Recorded by lm-eval under results['config']."""
        return {
            "ripplebench": {
                "model": self.source.name,
                "gguf_file": self.source.gguf_file,
                "backend": self.backend,
                "editor": self.editor_name,
                "editor_class": type(self.editor).__name__,
                "editor_config": dataclasses.asdict(self.editor.config),
                "prompt_format": self.prompt_format,
                "max_new_tokens": self.max_new_tokens,
                # e.g. training tokens per edit, for the "#tokens relative to CPT" column
                "edit_stats": summarize_edit_stats(self.edit_stats),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "journals": self.journals,
                "manifest": build_manifest(
                    weights_identity(self.source), self.task_data, self.edit_stats, self.judge_args
                ),
            }
        }

    @property
    def journals(self) -> list[dict[str, Any]]:
        """Each task's journal summary: groups reused from it and answered into it."""
        return self.task_journals.summaries
