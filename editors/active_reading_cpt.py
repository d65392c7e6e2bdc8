"""`active_reading_cpt`: CPT on the fact plus Active Reading augmentations (paper Appendix B.2).

Generator choice (`generator`):
- "self" (offline default): the model being edited writes its own augmentations, before
  training, greedily unless `temperature` > 0;
- "openai": an OpenAI-compatible endpoint, `base_url` + `generator_model`, key read from the
  environment variable `api_key_env` (the paper used gpt-5-nano);
- anything else: a local model spec (alias, folder, Hugging Face id) loaded with transformers.

Augmentations are cached under `cache_dir` (default: <ripplebench cache>/active_reading) and
reused by every later run with the same generator, templates and fact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .active_reading import TEMPLATES_DIR, ActiveReader, Generator, LocalGenerator, OpenAIGenerator
from .base import Edit
from .cpt import CPT, CPTConfig


@dataclass
class ActiveReadingCPTConfig(CPTConfig):
    generator: str = "self"
    generator_model: str = ""  # the endpoint's model name when generator=openai
    base_url: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    generation_seed: int = 0
    max_new_tokens: int = 256
    max_strategies: int = 5  # per stage-1 prompt (task-agnostic and task-specific)
    templates_dir: str = str(TEMPLATES_DIR)
    cache_dir: str = ""


class ActiveReadingCPT(CPT):
    name = "active_reading_cpt"
    description = (
        "CPT on the fact plus Active Reading augmentations: generated learning strategies, then "
        "one text per strategy (Lin et al. 2025; paper Appendix B.2); cached on disk."
    )
    config_class = ActiveReadingCPTConfig

    def __init__(self, config: ActiveReadingCPTConfig | None = None) -> None:
        super().__init__(config)
        self._readers: dict[str, ActiveReader] = {}

    def check(self, model_config) -> None:
        super().check(model_config)
        if self.config.generator == "openai" and not self.config.generator_model:
            raise ValueError("generator=openai needs editor.generator_model=<the endpoint's model name>.")

    def make_generator(self, model) -> Generator:
        """The configured generator; `model` is the LoadedModel being edited."""
        settings = self.config
        if settings.generator == "openai":
            return OpenAIGenerator(
                settings.generator_model,
                settings.base_url,
                settings.api_key_env,
                settings.temperature,
                settings.generation_seed,
                settings.max_new_tokens,
            )
        if settings.generator == "self":
            loaded = model
        else:
            from ripplebench.core.models import load_model, resolve_model

            loaded = load_model(resolve_model(settings.generator), device=str(model.device))
        return LocalGenerator(loaded, settings.temperature, settings.generation_seed, settings.max_new_tokens)

    def reader(self, model) -> ActiveReader:
        """One ActiveReader per generator, made on first use."""
        key = f"self:{id(model.model)}" if self.config.generator == "self" else self.config.generator
        if key not in self._readers:
            from ripplebench.core.cache import default_cache_dir

            cache = self.config.cache_dir or default_cache_dir() / "active_reading"
            self._readers[key] = ActiveReader(
                self.make_generator(model), cache, self.config.max_strategies, self.config.templates_dir
            )
        return self._readers[key]

    def training_texts(self, model, edits: Sequence[Edit]) -> list[str]:
        reader = self.reader(model)
        texts = []
        for edit in edits:
            texts.append(edit.fact)
            texts.extend(reader.augment(edit.fact))
        return texts
