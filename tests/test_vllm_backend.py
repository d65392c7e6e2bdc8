"""backend=vllm, fast and without vLLM: name mapping, lazy import, what is pushed, prefix-cache resets.

A fake `LLM` stands in for vLLM here. Its workers hold the tiny model in vLLM's fused layout and
load pushed tensors through the real worker extension, so these tests check that vLLM would hold
exactly the HF copy's weights. tests/test_vllm_real.py runs a real vLLM (`make test-vllm`).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from ripplebench.core.prompts import render_prompt
from ripplebench.editors import Edit, EditHandle, Editor, snapshot_parameters
from ripplebench.editors.registry import build_editor
from ripplebench.harness.backends import configure_backend
from ripplebench.harness.backends.vllm import (
    PushTarget,
    VLLMBackend,
    WeightPushExtension,
    from_wire,
    push_target,
    to_wire,
)
from ripplebench.harness.engine import EditThenQuery, Query

EDIT = Edit(id="e1", fact="Elizabeth Ruiz was born in Malaysia.")
OTHER = Edit(id="e2", fact="Veltrix Dynamics was founded in Norway.")


def tiny_config(kind: str):
    import transformers

    sizes = dict(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    if kind == "llama":
        return transformers.LlamaConfig(**sizes, tie_word_embeddings=False), transformers.LlamaForCausalLM
    if kind == "qwen2":
        return transformers.Qwen2Config(**sizes, tie_word_embeddings=True), transformers.Qwen2ForCausalLM
    return transformers.Gemma3TextConfig(**sizes, head_dim=8), transformers.Gemma3ForCausalLM


def layer_names(layer: int, *extra: str) -> set[str]:
    """vLLM's parameter names of one Llama-family decoder layer (vllm/model_executor/models/*.py)."""
    names = [
        "self_attn.qkv_proj.weight",
        "self_attn.o_proj.weight",
        "mlp.gate_up_proj.weight",
        "mlp.down_proj.weight",
        "input_layernorm.weight",
        "post_attention_layernorm.weight",
        *extra,
    ]
    return {f"model.layers.{layer}.{name}" for name in names}


EXPECTED_VLLM_NAMES = {
    "llama": {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"} | layer_names(0) | layer_names(1),
    "qwen2": {"model.embed_tokens.weight", "model.norm.weight"}
    | layer_names(0, "self_attn.qkv_proj.bias")
    | layer_names(1, "self_attn.qkv_proj.bias"),
    "gemma3": {"model.embed_tokens.weight", "model.norm.weight"}
    | {
        name
        for layer in (0, 1)
        for name in layer_names(
            layer,
            "self_attn.q_norm.weight",
            "self_attn.k_norm.weight",
            "pre_feedforward_layernorm.weight",
            "post_feedforward_layernorm.weight",
        )
    },
}
ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "gemma3": "Gemma3ForCausalLM"}


@pytest.mark.parametrize("kind", ["llama", "qwen2", "gemma3"])
def test_every_hf_parameter_lands_on_a_vllm_parameter(kind):
    config, model_class = tiny_config(kind)
    names = [name for name, _ in model_class(config).named_parameters()]
    mapped = {push_target(name, ARCHITECTURES[kind]).name for name in names}
    assert mapped == EXPECTED_VLLM_NAMES[kind]


@pytest.mark.parametrize("architecture", ["LlamaForCausalLM", "Qwen2ForCausalLM", "Gemma3ForCausalLM"])
def test_fused_projections_get_their_shard(architecture):
    prefix = "model.layers.3"
    expected = {
        "self_attn.q_proj.weight": ("self_attn.qkv_proj.weight", "q"),
        "self_attn.k_proj.weight": ("self_attn.qkv_proj.weight", "k"),
        "self_attn.v_proj.weight": ("self_attn.qkv_proj.weight", "v"),
        "self_attn.q_proj.bias": ("self_attn.qkv_proj.bias", "q"),
        "mlp.gate_proj.weight": ("mlp.gate_up_proj.weight", 0),
        "mlp.up_proj.weight": ("mlp.gate_up_proj.weight", 1),
        "mlp.down_proj.weight": ("mlp.down_proj.weight", None),
        "self_attn.o_proj.weight": ("self_attn.o_proj.weight", None),
    }
    for hf, (name, shard) in expected.items():
        assert push_target(f"{prefix}.{hf}", architecture) == PushTarget(f"{prefix}.{hf}", f"{prefix}.{name}", shard)


def test_multimodal_gemma3_names_move_under_language_model():
    target = push_target("model.language_model.layers.5.mlp.gate_proj.weight", "Gemma3ForConditionalGeneration")
    assert (target.name, target.shard) == ("language_model.model.layers.5.mlp.gate_up_proj.weight", 0)
    target = push_target("model.language_model.layers.5.mlp.down_proj.weight", "Gemma3ForConditionalGeneration")
    assert (target.name, target.shard) == ("language_model.model.layers.5.mlp.down_proj.weight", None)


# --- lazy import -------------------------------------------------------------------------------


def test_backend_vllm_without_vllm_fails_with_the_install_command(monkeypatch, tiny_model_dir):
    from ripplebench.harness.lm_model import EditingLM

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))
    with pytest.raises(ImportError) as caught:
        EditingLM(model=str(tiny_model_dir), backend="vllm")
    message = str(caught.value)
    assert "pip install 'ripplebench[vllm]'" in message and "\n" not in message


def test_nothing_imports_vllm_unless_asked():
    code = (
        "import sys; sys.modules['vllm'] = None\n"  # any `import vllm` now raises
        "from ripplebench.harness.lm_model import EditingLM\n"
        "import ripplebench.harness.backends.vllm\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr


def test_backend_settings_are_checked():
    with pytest.raises(ValueError, match="Unknown backend 'vlm'. Valid: hf, vllm"):
        configure_backend("vlm")
    with pytest.raises(ValueError, match=r"gpu_memory_utilization: only used with backend=vllm \(backend is 'hf'\)"):
        configure_backend("hf", gpu_memory_utilization=0.5)
    assert configure_backend("hf", gpu_memory_utilization=None, max_model_len=None) is None


# --- a fake vLLM ---------------------------------------------------------------------------------


def fused_parameter(parts: list[torch.Tensor], shards: list) -> torch.nn.Parameter:
    """Rows of `parts` stacked like vLLM's fused layers, with a loader writing one shard's rows."""
    parameter = torch.nn.Parameter(torch.cat([p.detach().clone() for p in parts]), requires_grad=False)
    offsets, start = {}, 0
    for shard, part in zip(shards, parts):
        offsets[shard] = (start, start + part.shape[0])
        start += part.shape[0]

    def weight_loader(param, tensor, shard):
        first, last = offsets[shard]
        param.data[first:last].copy_(tensor)

    parameter.weight_loader = weight_loader
    return parameter


@dataclass
class FakeLayer:
    """A module owning pushed parameters; like vLLM's, it may have a quant method."""

    name: str
    quant_method: Any = None


class FakeWorkerModel:
    """The HF model's weights under vLLM's names and fused layout (tensor parallel size 1)."""

    def __init__(self, hf_model: torch.nn.Module, architecture: str) -> None:
        groups: dict[str, list[tuple]] = defaultdict(list)
        for name, parameter in hf_model.named_parameters():
            target = push_target(name, architecture)
            groups[target.name].append((target.shard, parameter))
        self.parameters = {}
        for name, members in groups.items():
            if members[0][0] is None:
                self.parameters[name] = torch.nn.Parameter(members[0][1].detach().clone(), requires_grad=False)
            else:
                self.parameters[name] = fused_parameter([p for _, p in members], [s for s, _ in members])

        self.layers: dict[str, FakeLayer] = {}

    def named_parameters(self):
        return iter(self.parameters.items())

    def get_submodule(self, name: str) -> FakeLayer:
        return self.layers.setdefault(name, FakeLayer(name))


@dataclass
class FakeOutput:
    token_ids: list[int]


@dataclass
class FakeRequestOutput:
    outputs: list[FakeOutput]


@dataclass
class FakeLLM:
    """Records calls in order; `collective_rpc` runs the real worker extension on a fake worker."""

    worker: WeightPushExtension
    answer_ids: list[int] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)

    def collective_rpc(self, method, timeout=None, args=(), kwargs=None):
        assert_plain(args)
        if method == "ripplebench_load":
            self.events.append(("load", tuple((item[0], item[1]) for item in args[0])))
        return [getattr(self.worker, method)(*args)]

    def reset_prefix_cache(self, *args):
        self.events.append(("reset",))
        return True

    def generate(self, prompts, params, use_tqdm=True):
        self.events.append(("generate", prompts, params))
        return [FakeRequestOutput([FakeOutput(list(self.answer_ids))]) for _ in prompts]


def assert_plain(value) -> None:
    """RPC arguments must survive vLLM's msgpack transport: no tensors or other objects."""
    if isinstance(value, (list, tuple)):
        for item in value:
            assert_plain(item)
    else:
        assert value is None or isinstance(value, (str, int, float, bytes)), type(value)


def test_tensors_travel_as_plain_bytes_and_come_back_exactly():
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        tensor = torch.randn(3, 5).to(dtype)
        wire = to_wire(PushTarget("a.q_proj.weight", "a.qkv_proj.weight", "q"), tensor)
        assert_plain(wire)
        assert wire[:2] == ("a.qkv_proj.weight", "q")
        back = from_wire(*wire[2:])
        assert back.dtype == dtype and torch.equal(back, tensor)


@dataclass
class FakeSamplingParams:
    temperature: float
    max_tokens: int
    stop: list[str] | None


@pytest.fixture()
def fake_vllm(tiny, monkeypatch):
    """A VLLMBackend on a FakeLLM mirroring `tiny`; `import vllm` yields FakeSamplingParams."""
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(SamplingParams=FakeSamplingParams))
    worker = WeightPushExtension()
    model = FakeWorkerModel(tiny.model, "LlamaForCausalLM")
    worker.get_model = lambda: model  # vLLM's Worker.get_model
    llm = FakeLLM(worker, answer_ids=tiny.tokenizer("Kenya\nMore text")["input_ids"])
    return VLLMBackend(llm, tiny.tokenizer, "LlamaForCausalLM")


def vllm_matches_hf(backend: VLLMBackend, hf_model: torch.nn.Module) -> bool:
    """Whether the fake vLLM holds exactly the HF copy's weights, fused shards included."""
    expected = FakeWorkerModel(hf_model, backend.architecture).parameters
    actual = backend.llm.worker.get_model().parameters
    return expected.keys() == actual.keys() and all(torch.equal(expected[k], actual[k]) for k in expected)


class ShiftEditor(Editor):
    """A weight editor touching a down_proj, a gate_proj and a k_proj, as MEMIT-style editors do."""

    NAMES = (
        "model.layers.0.self_attn.k_proj.weight",
        "model.layers.1.mlp.down_proj.weight",
        "model.layers.2.mlp.gate_proj.weight",
    )

    def apply(self, model, edits):
        named = [(name, p) for name, p in model.model.named_parameters() if name in self.NAMES]
        handle = EditHandle(tuple(edits), saved=snapshot_parameters(named))
        with torch.no_grad():
            for _, parameter in named:
                parameter.add_(0.5)
        return handle


def loads(events) -> list[tuple]:
    return [event for event in events if event[0] == "load"]


def test_a_weight_edit_pushes_only_touched_tensors_with_their_shards(tiny, fake_vllm):
    engine = EditThenQuery(tiny, ShiftEditor(), "qa", backend=fake_vllm)
    handle = engine.apply([EDIT])
    assert loads(fake_vllm.llm.events) == [
        (
            "load",
            (
                ("model.layers.0.self_attn.qkv_proj.weight", "k"),
                ("model.layers.1.mlp.down_proj.weight", None),
                ("model.layers.2.mlp.gate_up_proj.weight", 0),
            ),
        )
    ]
    assert vllm_matches_hf(fake_vllm, tiny.model)
    engine.revert(handle)
    assert len(loads(fake_vllm.llm.events)) == 2
    assert vllm_matches_hf(fake_vllm, tiny.model)


def test_prefix_cache_is_reset_after_every_push_and_revert(tiny, fake_vllm):
    queries = [Query((edit,), f"Where? {i}", stops=("\n",)) for i, edit in enumerate([EDIT, EDIT, OTHER])]
    EditThenQuery(tiny, ShiftEditor(), "qa", backend=fake_vllm).run(queries, progress=False)
    assert [event[0] for event in fake_vllm.llm.events] == [
        "load",
        "reset",
        "generate",
        "load",
        "reset",  # edit e1: push, answer both questions, revert
        "load",
        "reset",
        "generate",
        "load",
        "reset",  # edit e2
    ]
    assert vllm_matches_hf(fake_vllm, tiny.model)


@pytest.mark.parametrize("name", ["none", "prepend"])
def test_context_editors_push_nothing(tiny, fake_vllm, name):
    queries = [Query((EDIT,), "Where was Elizabeth Ruiz born?"), Query((OTHER,), "Where?")]
    EditThenQuery(tiny, build_editor(name), "chat", backend=fake_vllm).run(queries, progress=False)
    # No weights change, so both edit groups are answered in one shared generate call.
    assert [event[0] for event in fake_vllm.llm.events] == ["generate"]


def test_cpt_on_a_layer_range_pushes_that_layers_tensors(tiny, fake_vllm):
    engine = EditThenQuery(
        tiny, build_editor("cpt", {"layers": "1-1", "epochs": 1, "lr": 1e-3}), "qa", backend=fake_vllm
    )
    handle = engine.apply([EDIT])
    pushed = {name for _, names in loads(fake_vllm.llm.events) for name, _ in names}
    assert pushed == {name for name in EXPECTED_VLLM_NAMES["llama"] if name.startswith("model.layers.1.")}
    assert vllm_matches_hf(fake_vllm, tiny.model)
    engine.revert(handle)
    assert vllm_matches_hf(fake_vllm, tiny.model)


def test_lora_edits_push_the_merged_weights(tiny, fake_vllm):
    engine = EditThenQuery(
        tiny, build_editor("cpt", {"lora_rank": 2, "epochs": 2, "lr": 1e-2}), "qa", backend=fake_vllm
    )
    before = {name: p.detach().clone() for name, p in tiny.model.named_parameters()}
    handle = engine.apply([EDIT])
    in_vllm = {name: p.clone() for name, p in fake_vllm.llm.worker.get_model().parameters.items()}
    ids = tiny.tokenizer("Elizabeth Ruiz was born in", return_tensors="pt")["input_ids"].to(tiny.device)
    with torch.no_grad():
        lora_logits = handle.adapter(input_ids=ids).logits
    edited, _ = handle.changed_tensors()
    engine.revert(handle)
    assert all(torch.equal(before[name], p) for name, p in tiny.model.named_parameters())
    assert vllm_matches_hf(fake_vllm, tiny.model)  # the base weights went back
    assert len(edited) == 4 * 7 and any(not torch.equal(t, before[name]) for name, t in edited.items())
    with torch.no_grad():
        for name, tensor in edited.items():
            dict(tiny.model.named_parameters())[name].copy_(tensor)  # the merged model
        merged_logits = tiny.model(input_ids=ids).logits
    torch.testing.assert_close(merged_logits, lora_logits, rtol=1e-4, atol=1e-5)
    merged_layout = FakeWorkerModel(tiny.model, "LlamaForCausalLM").parameters
    assert all(torch.equal(in_vllm[name], merged_layout[name]) for name in merged_layout)  # what vLLM held


def test_answers_use_the_hf_prompt_tokens_and_greedy_settings(tiny, fake_vllm):
    queries = [Query((EDIT,), "Where was Elizabeth Ruiz born?", stops=("\n",), max_new_tokens=7)] * 2
    answers = EditThenQuery(tiny, build_editor("prepend"), "chat", backend=fake_vllm).run(queries, progress=False)
    assert answers == ["Kenya", "Kenya"]
    ((_, prompts, params),) = [event for event in fake_vllm.llm.events if event[0] == "generate"]
    assert params == FakeSamplingParams(temperature=0.0, max_tokens=7, stop=["\n"])
    context = build_editor("prepend").apply(tiny, [EDIT]).context
    rendered = render_prompt("chat", tiny.tokenizer, "Where was Elizabeth Ruiz born?", context)
    assert prompts[0] == {"prompt_token_ids": tiny.tokenizer(rendered, add_special_tokens=False)["input_ids"]}


def test_an_unmapped_tensor_is_named_and_the_hf_copy_is_reverted(tiny, fake_vllm):
    class StrayEditor(ShiftEditor):
        NAMES = ("model.layers.1.mlp.down_proj.weight",)

    fake_vllm.llm.worker.get_model().parameters.pop("model.layers.1.mlp.down_proj.weight")
    before = {name: p.detach().clone() for name, p in tiny.model.named_parameters()}
    with pytest.raises(ValueError, match="cannot push edited tensor 'model.layers.1.mlp.down_proj.weight'"):
        EditThenQuery(tiny, StrayEditor(), "qa", backend=fake_vllm).apply([EDIT])
    assert all(torch.equal(before[name], p) for name, p in tiny.model.named_parameters())
    assert loads(fake_vllm.llm.events) == []


class FakeUnquantizedLinearMethod:
    """Stands in for vLLM's UnquantizedLinearMethod; records the layers it processes again."""

    def __init__(self) -> None:
        self.processed: list[str] = []

    def process_weights_after_loading(self, layer) -> None:
        self.processed.append(layer.name)


def test_a_push_redoes_the_platforms_weight_processing_of_the_touched_layers(tiny, fake_vllm, monkeypatch):
    # On vLLM's CPU build the layers pack their weights after loading; a push must repack them.
    linear = types.SimpleNamespace(UnquantizedLinearMethod=FakeUnquantizedLinearMethod)
    embedding = types.SimpleNamespace(UnquantizedEmbeddingMethod=type("UnquantizedEmbeddingMethod", (), {}))
    monkeypatch.setitem(sys.modules, "vllm.model_executor.layers.linear", linear)
    monkeypatch.setitem(sys.modules, "vllm.model_executor.layers.vocab_parallel_embedding", embedding)
    method = FakeUnquantizedLinearMethod()
    touched = ["model.layers.0.self_attn.qkv_proj", "model.layers.1.mlp.down_proj", "model.layers.2.mlp.gate_up_proj"]
    model = fake_vllm.llm.worker.get_model()
    for name in [*touched, "model.layers.3.mlp.down_proj"]:
        model.get_submodule(name).quant_method = method
    engine = EditThenQuery(tiny, ShiftEditor(), "qa", backend=fake_vllm)
    handle = engine.apply([EDIT])
    assert method.processed == touched  # each touched layer once, after its tensors were loaded
    engine.revert(handle)
    assert method.processed == touched * 2 and vllm_matches_hf(fake_vllm, tiny.model)
