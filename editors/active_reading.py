"""Active Reading augmentations (Lin et al. 2025; PropMEND paper, Appendix B.2).

Two stages per fact: (1) a generator LLM proposes learning strategies for the fact, with one
task-agnostic prompt and one task-specific prompt; (2) for each strategy it writes the text
that applying the strategy to the fact yields. Those texts are the augmentations.

Prompts are jinja2 templates in editors/templates/ (active_reading_*.j2). The generator is an
OpenAI-compatible endpoint (`OpenAIGenerator`; the paper used gpt-5-nano) or a local
transformers model (`LocalGenerator`; offline, e.g. the model being edited). Results are cached
on disk, one JSON file per fact, keyed by the generator's identity, a hash of the templates,
the number of strategies and the fact, so reruns make no generator calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import torch

from ripplebench.core.io import write_json

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STRATEGY_TEMPLATES = ("active_reading_strategies_task_agnostic.j2", "active_reading_strategies_task_specific.j2")
AUGMENTATION_TEMPLATE = "active_reading_augmentation.j2"


class Generator(Protocol):
    """Anything that turns prompts (user messages) into completions."""

    identity: str  # what produced the text; part of the cache key

    def complete(self, prompts: Sequence[str]) -> list[str]: ...


@dataclass
class OpenAIGenerator:
    """Chat completions from an OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp server...)."""

    model: str
    base_url: str = ""  # "" means the openai client's default (api.openai.com)
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    seed: int = 0
    max_tokens: int = 256
    timeout_s: float = 120.0

    @property
    def identity(self) -> str:
        return f"openai|{self.base_url}|{self.model}|t={self.temperature}|seed={self.seed}|max={self.max_tokens}"

    def complete(self, prompts: Sequence[str]) -> list[str]:
        from openai import OpenAI

        key = os.environ.get(self.api_key_env)
        if not key:
            raise ValueError(
                f"The Active Reading generator needs an API key in the environment variable "
                f"'{self.api_key_env}' (set it, or choose another with editor.api_key_env=...)."
            )
        client = OpenAI(api_key=key, base_url=self.base_url or None, timeout=self.timeout_s, max_retries=2)
        outputs = []
        for prompt in prompts:
            response = client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": prompt}],
                temperature=self.temperature,
                seed=self.seed,
                max_tokens=self.max_tokens,
            )
            outputs.append(response.choices[0].message.content or "")
        return outputs


@dataclass
class LocalGenerator:
    """Generation with a loaded transformers model (a `LoadedModel`): greedy when temperature
    is 0, else sampled with a fixed seed. Chat models get their chat template."""

    loaded: Any
    temperature: float = 0.0
    seed: int = 0
    max_new_tokens: int = 256
    batch_size: int = 8

    @property
    def identity(self) -> str:
        return f"local|{self.loaded.name}|t={self.temperature}|seed={self.seed}|max={self.max_new_tokens}"

    @torch.no_grad()
    def complete(self, prompts: Sequence[str]) -> list[str]:
        from ripplebench.core.prompts import render_prompt, resolve_prompt_format

        tokenizer, network, device = self.loaded.tokenizer, self.loaded.model, self.loaded.device
        style = "chat" if resolve_prompt_format("auto", tokenizer) == "chat" else "raw"
        sampling = (
            {"do_sample": True, "temperature": self.temperature} if self.temperature > 0 else {"do_sample": False}
        )
        outputs = []
        # Seeded here, and the global random state put back after: sampled texts do not depend
        # on what ran before and leave no trace on what runs after.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            for start in range(0, len(prompts), self.batch_size):
                texts = [render_prompt(style, tokenizer, p) for p in prompts[start : start + self.batch_size]]
                encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=style != "chat")
                generated = network.generate(
                    **encoded.to(device),
                    max_new_tokens=self.max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                    **sampling,
                )
                new = generated[:, encoded["input_ids"].shape[1] :]
                outputs.extend(text.strip() for text in tokenizer.batch_decode(new, skip_special_tokens=True))
        return outputs


def parse_strategies(text: str, limit: int) -> list[str]:
    """Strategies from a stage-1 answer: "## ..." lines, else bulleted or numbered lines,
    else the whole answer as one strategy; at most `limit`."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    listed = re.compile(r"^(?:[-*\u2022]|\d+[.)])\s+")
    marked = [line.lstrip("#").strip() for line in lines if line.startswith("#")]
    if not marked:
        marked = [line for line in lines if listed.match(line)]
    cleaned = [listed.sub("", line).replace("**", "").strip(" :") for line in marked]
    strategies = [s for s in cleaned if len(s.split()) >= 2] or ([text.strip()] if text.strip() else [])
    return strategies[:limit]


class ActiveReader:
    """Makes (and caches) the Active Reading augmentations of facts."""

    def __init__(
        self,
        generator: Generator,
        cache_dir: str | Path,
        max_strategies: int = 5,
        templates_dir: str | Path = TEMPLATES_DIR,
    ) -> None:
        import jinja2

        self.generator = generator
        self.cache_dir = Path(cache_dir)
        self.max_strategies = max_strategies
        loader = jinja2.FileSystemLoader(str(templates_dir))
        self.environment = jinja2.Environment(
            loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=False
        )
        names = (*STRATEGY_TEMPLATES, AUGMENTATION_TEMPLATE)
        missing = [name for name in names if not (Path(templates_dir) / name).is_file()]
        if missing:
            raise ValueError(f"Active Reading templates missing from '{templates_dir}': {', '.join(missing)}.")
        digest = hashlib.sha256()
        for name in names:
            digest.update((Path(templates_dir) / name).read_bytes())
        self.templates_hash = digest.hexdigest()

    def cache_path(self, fact: str) -> Path:
        key = json.dumps([self.generator.identity, self.templates_hash, self.max_strategies, fact])
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    def augment(self, fact: str) -> list[str]:
        """The augmentations of `fact`: from the cache, else generated and then cached."""
        path = self.cache_path(fact)
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))["augmentations"]
        prompts = [
            self.environment.get_template(name).render(fact=fact, count=self.max_strategies)
            for name in STRATEGY_TEMPLATES
        ]
        strategies = [
            s for answer in self.generator.complete(prompts) for s in parse_strategies(answer, self.max_strategies)
        ]
        template = self.environment.get_template(AUGMENTATION_TEMPLATE)
        outputs = self.generator.complete([template.render(fact=fact, strategy=s) for s in strategies])
        augmentations = [text.strip() for text in outputs if text.strip()]
        record = {
            "fact": fact,
            "generator": self.generator.identity,
            "templates_hash": self.templates_hash,
            "strategies": strategies,
            "augmentations": augmentations,
        }
        self._write(path, record)
        return augmentations

    @staticmethod
    def _write(path: Path, record: dict[str, Any]) -> None:
        """Write via a temporary file and rename, so an interrupted run leaves no half file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, record)
