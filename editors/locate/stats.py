"""Second-moment statistics of MLP keys, C = E[k k^T], computed once and cached on disk.

The cache lives in $RIPPLEBENCH_CACHE/stats (default ~/.cache/ripplebench/stats), one file per
(model identity, down-projection module, corpus, document count, max length, dtype), so every
run and every editor that needs the same statistics reads them instead of recomputing (once per
process: later edits reuse the tensors read, which callers must not modify in place). Files
are written to a temporary name and renamed, so an interrupted run leaves no partial file.
AlphaEdit's null-space projections are cached next to the statistics they come from.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm import tqdm

from ripplebench.core.cache import default_cache_dir
from ripplebench.core.io import atomic_path
from ripplebench.core.models import LoadedModel

from .corpus import Corpus
from .modules import ModulePaths, capture_inputs, forward_until


def model_identity(loaded: LoadedModel) -> str:
    """The model's name plus a hash of its config, safe as a folder name."""
    config = loaded.model.config.to_json_string(use_diff=False)
    digest = hashlib.sha256(config.encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(loaded.name)).strip("_")[-60:]
    return f"{name}-{digest}"


@dataclass(frozen=True)
class StatsSettings:
    """What the statistics are computed from, besides the model and layer."""

    corpus: Corpus
    n_samples: int
    max_length: int
    batch_size: int
    cache_dir: Path | None = None

    @property
    def documents(self) -> tuple[str, ...]:
        return self.corpus.sample(self.n_samples)


def stats_path(loaded: LoadedModel, paths: ModulePaths, layer: int, settings: StatsSettings) -> Path:
    """The cache file of one layer's statistics."""
    root = Path(settings.cache_dir or default_cache_dir()) / "stats" / model_identity(loaded)
    dtype = str(loaded.model.dtype).removeprefix("torch.")
    name = f"{settings.corpus.id}-n{len(settings.documents)}-len{settings.max_length}-{dtype}.pt"
    return root / paths.rewrite_tmp.format(layer) / name


def _save(value: dict, path: Path) -> None:
    with atomic_path(path) as staging:
        torch.save(value, staging)


@torch.no_grad()
def _compute(
    loaded: LoadedModel, paths: ModulePaths, layers: Sequence[int], settings: StatsSettings
) -> dict[int, dict]:
    """One pass over the corpus, summing k k^T (in float64) over every non-padding token."""
    model, tokenizer = loaded.model, loaded.tokenizer
    sums = {layer: None for layer in layers}
    tokens = 0
    documents = settings.documents
    config = model.config
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    max_length = min(settings.max_length, positions or settings.max_length)
    batches = range(0, len(documents), settings.batch_size)
    modules = {layer: paths.down_proj(model, layer) for layer in layers}
    for start in tqdm(batches, desc=f"key statistics ({settings.corpus.id}, layers {list(layers)})", unit="batch"):
        batch = documents[start : start + settings.batch_size]
        encoded = [tokenizer(text, truncation=True, max_length=max_length)["input_ids"] for text in batch]
        length = max(len(ids) for ids in encoded)
        ids = torch.tensor([row + [tokenizer.pad_token_id or 0] * (length - len(row)) for row in encoded])
        mask = torch.tensor([[1] * len(row) + [0] * (length - len(row)) for row in encoded]).bool()
        with capture_inputs(modules) as keys:
            forward_until(model, modules[max(layers)], ids.to(loaded.device), mask.to(loaded.device))
        for layer in layers:
            selected = keys[layer][mask.to(loaded.device)].float()
            product = (selected.T @ selected).double().cpu()
            sums[layer] = product if sums[layer] is None else sums[layer] + product
        tokens += int(mask.sum())
    return {
        layer: {"mom2": (sums[layer] / tokens).float(), "tokens": tokens, "documents": len(documents)}
        for layer in layers
    }


@functools.lru_cache(maxsize=64)
def _read(path: str, modified_ns: int) -> dict:
    """A statistics file, read from disk once per process (and again only if it changes)."""
    return torch.load(path)


def forget_read_statistics() -> None:
    """Drop the statistics read so far, so the next edit reads its files again (a new run)."""
    _read.cache_clear()


def second_moments(
    loaded: LoadedModel, paths: ModulePaths, layers: Sequence[int], settings: StatsSettings
) -> tuple[dict[int, torch.Tensor], dict[str, object]]:
    """E[k k^T] for each layer's down-projection input, from the cache or one corpus pass.

    Returns the matrices and a record for results (corpus, documents, tokens, cache files).
    """
    files = {layer: stats_path(loaded, paths, layer, settings) for layer in layers}
    missing = [layer for layer in layers if not files[layer].is_file()]
    if missing:
        for layer, value in _compute(loaded, paths, missing, settings).items():
            _save(value, files[layer])
    loaded_stats = {layer: _read(str(files[layer]), files[layer].stat().st_mtime_ns) for layer in layers}
    record = {
        "mom2_corpus": settings.corpus.id,
        "mom2_corpus_description": settings.corpus.description,
        "mom2_documents": loaded_stats[layers[0]]["documents"],
        "mom2_tokens": loaded_stats[layers[0]]["tokens"],
        "mom2_computed_layers": missing,
        "mom2_files": [str(files[layer]) for layer in layers],
    }
    device = loaded.device
    return {layer: value["mom2"].to(device) for layer, value in loaded_stats.items()}, record


def cached_tensor(path: Path, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Read a tensor from `path`, computing and saving it first if it is not there."""
    if not path.is_file():
        _save({"value": compute().cpu()}, path)
    return torch.load(path)["value"]
