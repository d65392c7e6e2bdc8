"""The lm-eval model type `editing`: a base model plus an editor, run edit-then-query.

    lm_eval --model editing \
        --model_args model=smollm2-135m,editor=prepend \
        --tasks controlled_ripple_id --batch_size 16

Model args: `model` (alias, Hugging Face id, folder or .gguf path), `gguf_file`, `editor`
(name or preset), `editor_config` (YAML file), `editor.<field>=value` (config overrides),
`prompt_format` (auto, chat, qa, raw), `max_new_tokens` (default 20, as in the paper),
`dtype`, `device`, `cache_dir`, `backend` (hf, or vllm for GPUs: harness/vllm_backend.py) with
its `gpu_memory_utilization` and `max_model_len`, `journal` (folder of the answered-groups
journal; default `<--output_path>/journal` when lm_eval's --output_path is set) and `resume`
(default true; false discards the journal and starts fresh).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from lm_eval.api.model import LM

from ripplebench.editors.registry import build_editor
from ripplebench.harness.engine import EditThenQuery, Query, edits_from_doc, peak_rss_mb, summarize_edit_stats
from ripplebench.harness.journal import EditJournal, digest
from ripplebench.harness.judge import METADATA_PREFIX as JUDGE_PREFIX
from ripplebench.harness import vllm_backend
from ripplebench.core.models import LoadedModel, load_config, load_model, resolve_model, weights_dir, weights_identity
from ripplebench.core.prompts import PROMPT_FORMATS, resolve_prompt_format

log = logging.getLogger(__name__)

EDITOR_PREFIX = "editor."
DEFAULT_BATCH_SIZE = 16


def _pick_device(device: str | None) -> str:
    import torch

    if device and not (device.startswith("cuda") and not torch.cuda.is_available()):
        return device
    if device:
        log.warning("Device '%s' is not available here; using the CPU.", device)
    return "cuda" if torch.cuda.is_available() else "cpu"


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


def lm_eval_output_path(argv: list[str] | None = None) -> str | None:
    """The `--output_path` of the `lm_eval` command this process runs, if any.

    lm-eval does not hand its output path to the model, so the command line is read here with
    lm-eval's own `run` parser (abbreviations and `--config FILE` included). Any other program
    (the sweep, a script, pytest) gets None and passes `journal=` when it wants a journal.
    """
    argv = sys.argv if argv is None else argv
    program = Path(argv[0]) if argv else Path()
    if program.name not in ("lm_eval", "lm-eval") and program.parts[-2:] != ("lm_eval", "__main__.py"):
        return None
    import argparse

    try:
        from lm_eval._cli.run import Run
        from lm_eval.config.evaluate_config import EvaluatorConfig
    except ImportError as error:  # another lm-eval layout: no journal rather than no run
        log.warning("Cannot read lm_eval's --output_path (%s); pass journal=DIR to journal answers.", error)
        return None

    parser = argparse.ArgumentParser(add_help=False)
    Run.create(parser.add_subparsers(dest="command"))
    arguments = argv[1:] if argv[1:2] == ["run"] else ["run", *argv[1:]]
    known, _ = parser.parse_known_args(arguments)
    if known.output_path is None and known.config:
        return EvaluatorConfig.load_yaml_config(known.config).get("output_path")
    return known.output_path


def default_journal_dir(output_path: str | None) -> str | None:
    """`<output folder>/journal` for lm-eval's --output_path (a folder, or a .json file in one)."""
    if not output_path:
        return None
    path = Path(output_path)
    return str((path.parent if path.suffix == ".json" else path) / "journal")


def _parse_bool(value: bool | str, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"model_args {name}={value!r} is not a boolean: use true or false.")


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
        # judge_<setting> args are read by the tasks (lm-eval copies model_args into task metadata).
        unknown = sorted(key for key in extra if not key.startswith((EDITOR_PREFIX, JUDGE_PREFIX)))
        if unknown:
            raise ValueError(
                f"Unknown model_args {', '.join(unknown)} for --model editing. Valid: model, "
                "editor, editor_config, editor.<field>, gguf_file, prompt_format, "
                "max_new_tokens, dtype, device, cache_dir, backend, gpu_memory_utilization, "
                "max_model_len, journal, resume, judge_<setting>."
            )
        self.backend = str(backend)
        # None for backend=hf; checked (and vLLM's presence with it) before any model work.
        self.vllm_settings = vllm_backend.settings_for(self.backend, gpu_memory_utilization, max_model_len)
        if prompt_format not in PROMPT_FORMATS:
            raise ValueError(f"Unknown prompt_format '{prompt_format}'. Valid: {', '.join(PROMPT_FORMATS)}.")
        # lm-eval parses the string "none" as None.
        self.editor_name = "none" if editor is None else str(editor)
        overrides = {key[len(EDITOR_PREFIX) :]: value for key, value in extra.items() if key.startswith(EDITOR_PREFIX)}
        self.editor = build_editor(self.editor_name, overrides, editor_config)
        self.source = resolve_model(str(model), gguf_file, cache_dir)
        self.cache_dir = cache_dir
        # Cheap checks against the model's config come before any weights are loaded.
        self.editor.check(load_config(self.source, cache_dir))
        self.requested_prompt_format = prompt_format
        self.max_new_tokens = int(max_new_tokens)
        self.dtype = dtype
        self.device_name = _pick_device(device)
        self.batch = DEFAULT_BATCH_SIZE if str(batch_size).startswith("auto") or batch_size is None else int(batch_size)
        self._loaded: LoadedModel | None = None
        self._vllm: vllm_backend.VLLMDecoder | None = None
        self.edit_stats: list[dict[str, Any]] = []
        self.journal_dir = journal or default_journal_dir(lm_eval_output_path())
        self.resume = _parse_bool(resume, "resume")
        self.journals: list[dict[str, Any]] = []  # each task's journal summary, for the results

    @property
    def loaded(self) -> LoadedModel:
        """The model, loaded on first use so that bad task data fails before this work."""
        if self._loaded is None:
            self._loaded = load_model(
                self.source, dtype=self.dtype, device=self.device_name, cache_dir=self.cache_dir
            )
        return self._loaded

    @property
    def vllm(self) -> vllm_backend.VLLMDecoder:
        """The vLLM engine of backend=vllm, started after the HF copy is on the GPU."""
        if self._vllm is None:
            folder = weights_dir(self.source, self.cache_dir)
            self._vllm = vllm_backend.build_decoder(self.loaded, folder, self.dtype, self.vllm_settings)
        return self._vllm

    @property
    def prompt_format(self) -> str:
        return resolve_prompt_format(self.requested_prompt_format, self.loaded.tokenizer)

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Answer each task's requests in turn (one journal per task when journaling)."""
        answers: list[str] = [""] * len(requests)
        by_task: dict[str, list[int]] = defaultdict(list)
        for index, request in enumerate(requests):
            by_task[request.task_name].append(index)
        editor, decode = self.editor, None
        if self.backend == "vllm":
            editor, decode = vllm_backend.PushingEditor(self.editor, self.vllm), self.vllm
        for task, indices in by_task.items():
            task_requests = [requests[i] for i in indices]
            queries = [query_from_request(request, self.max_new_tokens) for request in task_requests]
            engine = EditThenQuery(self.loaded, editor, self.prompt_format, self.batch, decode=decode)
            journal = self._open_journal(task, task_requests, queries)
            try:
                outputs = engine.run(queries, progress=not disable_tqdm, journal=journal)
            finally:
                if journal is not None:
                    journal.close()
            if journal is not None:
                self.journals.append({"task": task, **journal.summary()})
                # A resume is worth seeing among lm-eval's log lines, which show warnings only.
                (log.warning if journal.reused else log.info)(
                    "Task %s: reused %d answered edit groups from the journal %s, answered %d.",
                    task, journal.reused, journal.path, journal.recorded,
                )
            self.edit_stats.extend(engine.edit_stats)
            for index, output in zip(indices, outputs):
                answers[index] = output
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

    def _open_journal(self, task: str, requests, queries: list[Query]) -> EditJournal | None:
        if self.journal_dir is None:
            return None
        key = self.journal_key(task, requests, queries)
        return EditJournal(self.journal_dir, task, key, resume=self.resume)

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
            }
        }
