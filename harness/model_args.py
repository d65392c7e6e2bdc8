"""Checks of `--model_args` for `--model editing` that come before any model work."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from ripplebench.core.prompts import PROMPT_FORMATS
from ripplebench.harness.judge import METADATA_PREFIX as JUDGE_PREFIX

log = logging.getLogger(__name__)

EDITOR_PREFIX = "editor."
DEFAULT_BATCH_SIZE = 16


def editor_overrides(extra: Mapping[str, Any]) -> dict[str, Any]:
    """The `editor.<field>` args as editor config overrides; any other unknown arg is refused.

    `judge_<setting>` args pass: the tasks read them (lm-eval copies model_args into task metadata).
    """
    unknown = sorted(key for key in extra if not key.startswith((EDITOR_PREFIX, JUDGE_PREFIX)))
    if unknown:
        raise ValueError(
            f"Unknown model_args {', '.join(unknown)} for --model editing. Valid: model, "
            "editor, editor_config, editor.<field>, gguf_file, prompt_format, "
            "max_new_tokens, dtype, device, cache_dir, backend, gpu_memory_utilization, "
            "max_model_len, journal, resume, judge_<setting>."
        )
    return {key[len(EDITOR_PREFIX) :]: value for key, value in extra.items() if key.startswith(EDITOR_PREFIX)}


def judge_args(extra: Mapping[str, Any]) -> dict[str, Any]:
    """The `judge_<setting>` args among the extra model args."""
    return {key: value for key, value in extra.items() if key.startswith(JUDGE_PREFIX)}


def check_prompt_format(prompt_format: str) -> str:
    """`prompt_format` when it is one of PROMPT_FORMATS."""
    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(f"Unknown prompt_format '{prompt_format}'. Valid: {', '.join(PROMPT_FORMATS)}.")
    return prompt_format


def parse_batch_size(value: int | str | None) -> int:
    """lm-eval's --batch_size as a number: `auto` (and none) mean DEFAULT_BATCH_SIZE."""
    return DEFAULT_BATCH_SIZE if value is None or str(value).startswith("auto") else int(value)


def pick_device(device: str | None) -> str:
    """`device` when it is usable here; else CUDA when there is a GPU, the CPU otherwise."""
    import torch

    if device and not (device.startswith("cuda") and not torch.cuda.is_available()):
        return device
    if device:
        log.warning("Device '%s' is not available here; using the CPU.", device)
    return "cuda" if torch.cuda.is_available() else "cpu"
