"""What MEMIT, AlphaEdit and JEEP do alike before their own update: facts, modules, prefixes,
target rows and covariance statistics, with the touched weights saved for an exact revert."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from ripplebench.core.models import LoadedModel

from ..base import AtomicFact, Edit, EditHandle, Editor, snapshot_parameters
from .config import LocateEditConfig, parse_layers
from .corpus import load_corpus, resolve_auto
from .modules import ModulePaths, resolve_paths
from .rows import Rows, atomic_facts, encode_rows
from .stats import StatsSettings, second_moments
from .vstar import VStarSettings, generate_prefixes


@dataclass
class EditInputs:
    """Everything an update needs about the edits and the model."""

    facts: list[AtomicFact]
    paths: ModulePaths
    prefixes: list[str]
    rows: Rows  # one row per (fact, prefix), the bare prompt first
    bare: torch.Tensor  # index of each fact's bare row

    def vstar_settings(self, config: LocateEditConfig) -> VStarSettings:
        return VStarSettings(config.v_num_grad_steps, config.v_lr, config.kl_factor, config.facts_per_batch)


class LocateThenEdit(Editor):
    """Base of the locate-then-edit editors; subclasses implement `edit`."""

    config: LocateEditConfig

    def __init__(self, config: LocateEditConfig | None = None) -> None:
        super().__init__(config)
        # Results record the editor config, so they name the corpus `auto` stood for.
        self.config.mom2_dataset = resolve_auto(self.config.mom2_dataset)
        self._prefixes: tuple[torch.nn.Module, tuple[int, int, int], list[str]] | None = None

    def edited_layers(self, num_layers: int) -> list[int]:
        """Every layer whose down projection this config edits."""
        return parse_layers(self.config.layers, num_layers)

    def check(self, model_config: Any) -> None:
        self.edited_layers(model_config.num_hidden_layers)

    def prepare(self, model: LoadedModel, edits: Sequence[Edit]) -> EditInputs:
        facts = atomic_facts(edits)
        paths = resolve_paths(model.model, self.config.layer_module_tmp, self.config.rewrite_module_tmp)
        prefixes = self.prefixes(model)
        rows = encode_rows(model.tokenizer, facts, ["", *prefixes]).to(model.device)
        bare = torch.arange(len(facts), device=model.device) * (1 + len(prefixes))
        return EditInputs(facts, paths, prefixes, rows, bare)

    def prefixes(self, model: LoadedModel) -> list[str]:
        """MEMIT's generated prefixes, sampled once per model and reused by later edits (as
        MEMIT's own code does); the engine applies every edit to the unedited model, so the
        sampled texts are the same as sampling again."""
        settings = (self.config.prefix_count, self.config.prefix_length, self.config.seed)
        if self._prefixes is None or self._prefixes[0] is not model.model or self._prefixes[1] != settings:
            self._prefixes = (model.model, settings, generate_prefixes(model, *settings))
        return self._prefixes[2]

    def covariances(
        self, model: LoadedModel, paths: ModulePaths, layers: Sequence[int]
    ) -> tuple[dict[int, torch.Tensor], dict[str, Any]]:
        """C0 per layer from the configured corpus (cached on disk), and what was used."""
        settings = StatsSettings(
            corpus=load_corpus(self.config.mom2_dataset),
            n_samples=self.config.mom2_n_samples,
            max_length=self.config.mom2_max_length,
            batch_size=self.config.mom2_batch_size,
            cache_dir=Path(self.config.cache_dir) if self.config.cache_dir else None,
        )
        return second_moments(model, paths, layers, settings)

    def batches(self, edits: Sequence[Edit]) -> list[Sequence[Edit]]:
        """The batches `apply` writes one after the other; by default all edits in one."""
        return [edits]

    def apply(self, model: LoadedModel, edits: Sequence[Edit]) -> EditHandle:
        # Every batch is prepared on the unedited model, so bad edits fail before any change.
        prepared = [self.prepare(model, batch) for batch in self.batches(edits)]
        layers = self.edited_layers(model.model.config.num_hidden_layers)
        weights = {prepared[0].paths.weight_name(layer) for layer in layers}
        named = [(name, parameter) for name, parameter in model.model.named_parameters() if name in weights]
        handle = EditHandle(tuple(edits), saved=snapshot_parameters(named))
        try:
            stats = [self.edit(model, inputs) for inputs in prepared]
        except BaseException:
            self.revert(handle)  # never leave a half-edited model behind
            raise
        handle.stats.update(merge_batch_stats(stats))
        handle.stats["atomic_facts"] = sum(len(inputs.facts) for inputs in prepared)
        handle.stats["batches"] = len(prepared)
        return handle

    @abstractmethod
    def edit(self, model: LoadedModel, inputs: EditInputs) -> dict[str, Any]:
        """Change the weights for `inputs`; return statistics for results."""


def merge_batch_stats(stats: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One record for several batches: numbers averaged over batches, anything else the last batch's."""
    merged = dict(stats[-1])
    for key, value in merged.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[key] = sum(record[key] for record in stats) / len(stats)
    return merged
