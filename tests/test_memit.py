"""Locate-then-edit editors (MEMIT, AlphaEdit, JEEP) on the tiny model: rows, statistics cache,
updates, null-space property, sequential AlphaEdit, exact revert, and input errors."""

from __future__ import annotations

import pytest
import torch
from helpers import parameters_hash

from ripplebench.editors import AtomicFact, Edit, build_editor
from ripplebench.editors.locate.config import parse_layers
from ripplebench.editors.locate.corpus import load_corpus
from ripplebench.editors.locate.modules import cache_past, edit_output, logits_at, resolve_paths
from ripplebench.editors.locate.rows import encode_rows, split_rows
from ripplebench.editors.locate.stats import StatsSettings, second_moments
from ripplebench.editors.locate.vstar import DeltaSite, VStarSettings

FAST = {"mom2_dataset": "ctrl_ripple_sample", "mom2_n_samples": 40, "prefix_count": 2, "v_num_grad_steps": 5}
BORN = Edit(
    id="e1",
    fact="Elizabeth Ruiz was born in Kenya.",
    atomic_facts=(
        AtomicFact("Elizabeth Ruiz was born in", "Kenya", "Elizabeth Ruiz"),
        AtomicFact("Elizabeth Ruiz spent most of her adult life in", "Malaysia", "Elizabeth Ruiz"),
    ),
)
FOUNDED = Edit(
    id="e2",
    fact="Veltrix Dynamics was founded in France.",
    atomic_facts=(AtomicFact("Veltrix Dynamics was founded in", "France", "Veltrix Dynamics"),),
)
EDITORS = [
    ("memit", {"layers": "0-1"}),
    ("alphaedit", {"layers": "0-1"}),
    ("jeep", {"layers": "0-1", "high_layers": "2-3"}),
]


def settings(tmp_path, **changes) -> StatsSettings:
    values = {"corpus": load_corpus("ctrl_ripple_sample"), "n_samples": 30, "max_length": 64, "batch_size": 8}
    return StatsSettings(**{**values, **changes, "cache_dir": tmp_path})


def test_rows_mark_the_subjects_last_token_and_the_prompts_last_token(tiny):
    facts = list(BORN.atomic_facts)
    rows = encode_rows(tiny.tokenizer, facts, ["", "Some prefix. "])
    assert rows.fact.tolist() == [0, 0, 1, 1]
    for row in range(4):
        ids = rows.input_ids[row]
        up_to_subject = tiny.tokenizer.decode(ids[: rows.subject_last[row] + 1])
        assert up_to_subject.endswith("Elizabeth Ruiz")
        assert tiny.tokenizer.decode(ids[: rows.prompt_last[row] + 1]).endswith(facts[row // 2].prompt)
        labelled = rows.labels[row][rows.labels[row] != -100]
        assert tiny.tokenizer.decode(labelled) == " " + facts[row // 2].target
        assert int(rows.attention_mask[row].sum()) == int((rows.labels[row] != -100).nonzero().max()) + 1


def _tiny_models(tiny) -> list:
    """The tiny Llama and random Qwen2, Gemma 3 and GPT-2 models on its tokenizer."""
    from transformers import (
        Gemma3ForCausalLM,
        Gemma3TextConfig,
        GPT2Config,
        GPT2LMHeadModel,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    torch.manual_seed(0)
    sizes = {
        "vocab_size": len(tiny.tokenizer),
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 3,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
    }
    gpt2 = GPT2Config(n_layer=3, n_embd=16, n_head=2, vocab_size=len(tiny.tokenizer), n_positions=128)
    others = [
        Qwen2ForCausalLM(Qwen2Config(**sizes)),
        Gemma3ForCausalLM(Gemma3TextConfig(**sizes, head_dim=8)),
        GPT2LMHeadModel(gpt2),
    ]
    return [tiny.model, *(model.eval() for model in others)]


@pytest.mark.parametrize("architecture", range(4))
def test_rows_cut_before_the_subject_give_the_same_logits_with_the_past_cached(tiny, architecture):
    """v* runs only the tokens from the subject's last one on, after a cached past; with a delta
    added there, the logits must equal those of the uncut rows (also for a row cut at token 0)."""
    model = _tiny_models(tiny)[architecture].to(tiny.device)
    facts = [*BORN.atomic_facts, *FOUNDED.atomic_facts]
    rows = encode_rows(tiny.tokenizer, facts, ["", "Some prefix. "]).to(tiny.device)
    cut = rows.subject_last.clone()
    cut[-1] = 0
    split = split_rows(rows, cut, tiny.tokenizer.pad_token_id)
    paths = resolve_paths(model)
    delta = torch.randn(len(cut), model.config.hidden_size).to(tiny.device)

    def logits(input_ids, attention_mask, labels, position, past=None):
        def change(hidden):
            return hidden + torch.zeros_like(hidden).index_put(
                (torch.arange(len(cut), device=cut.device), position), delta
            )

        with edit_output(paths.layer(model, 1), change), torch.no_grad():
            return logits_at(model, input_ids, attention_mask, labels != -100, past)

    whole = logits(rows.input_ids, rows.attention_mask, rows.labels, cut)
    cached = cache_past(model, split)
    current = split.current
    assert (current.subject_last[:-1] == 0).all() and int(current.subject_last[-1]) == int(rows.subject_last[-1])
    at_cut = torch.zeros_like(cut)  # each row's delta position, counted from its cut
    assert torch.allclose(
        logits(current.input_ids, split.attention_mask, current.labels, at_cut, cached), whole, atol=1e-5
    )


SITES = {
    "memit": [DeltaSite(1, "subject_last", 0.75, 0.5)],
    "jeep": [DeltaSite(1, "subject_last", 1.0, 0.5), DeltaSite(2, "prompt_last", 0.25, 0.5, on_kl_prompts=False)],
}


@pytest.mark.parametrize("sites", SITES.values(), ids=SITES.keys())
def test_vstar_is_the_same_when_the_layers_up_to_the_lowest_site_are_replayed(tiny, monkeypatch, sites):
    from contextlib import nullcontext

    from ripplebench.editors.locate import vstar

    paths = resolve_paths(tiny.model, "auto", "auto")
    facts = [*BORN.atomic_facts, *FOUNDED.atomic_facts]
    settings = VStarSettings(steps=4, lr=0.5, kl_factor=0.0625, facts_per_batch=8)
    prefixes = ["The river rose. "]
    replayed, _ = vstar.optimise_targets(tiny, paths, facts, prefixes, sites, settings)
    monkeypatch.setattr(vstar, "replay_layers", lambda *_args: nullcontext())
    computed, _ = vstar.optimise_targets(tiny, paths, facts, prefixes, sites, settings)
    for replayed_targets, computed_targets in zip(replayed, computed):
        torch.testing.assert_close(replayed_targets, computed_targets)


def test_layer_settings_parse_ranges_lists_and_the_papers_depth():
    assert parse_layers("2-4", 30) == [2, 3, 4]
    assert parse_layers("4,2,3", 30) == [2, 3, 4]
    assert parse_layers("", 16) == [1, 2, 3, 4, 5]  # Table 26 for Llama-3.2-1B
    assert parse_layers("", 30) == [2, 3, 4, 5, 6, 7, 8, 9]
    with pytest.raises(ValueError, match="outside the model: valid layers are 0-3"):
        parse_layers("2,9", 4)


def test_module_paths_are_found_for_llama_qwen2_gemma3_and_gpt2(tiny):
    *llama_style, gpt2 = _tiny_models(tiny)
    for model in llama_style:
        paths = resolve_paths(model)
        assert (paths.layer_tmp, paths.rewrite_tmp) == ("model.layers.{}", "model.layers.{}.mlp.down_proj")
    paths = resolve_paths(gpt2)
    assert (paths.layer_tmp, paths.rewrite_tmp) == ("transformer.h.{}", "transformer.h.{}.mlp.c_proj")
    with pytest.raises(ValueError, match="rewrite_module_tmp 'model.layers.{}.mlp.nothing' does not name"):
        resolve_paths(tiny.model, rewrite_tmp="model.layers.{}.mlp.nothing")


def test_statistics_are_computed_once_then_read_from_the_cache(tiny, tmp_path):
    paths = resolve_paths(tiny.model)
    first, record = second_moments(tiny, paths, [0, 2], settings(tmp_path))
    assert record["mom2_computed_layers"] == [0, 2] and record["mom2_corpus"].startswith("ctrl_ripple_sample-")
    assert first[0].shape == (64, 64) and torch.allclose(first[0], first[0].T)

    def refuse(*_):
        raise AssertionError("the model ran although the statistics are cached")

    hook = tiny.model.register_forward_pre_hook(refuse)
    try:
        again, record = second_moments(tiny, paths, [0, 2], settings(tmp_path))
    finally:
        hook.remove()
    assert record["mom2_computed_layers"] == [] and torch.equal(again[0], first[0])


def test_statistics_cache_is_keyed_by_layer_corpus_sample_count_and_dtype(tiny, tmp_path, tmp_path_factory):
    paths = resolve_paths(tiny.model)
    text = tmp_path_factory.mktemp("corpus") / "notes.txt"
    text.write_text("Kenya is in Africa.\nMalaysia is in Asia.\n")
    _, base = second_moments(tiny, paths, [1], settings(tmp_path))
    _, layer = second_moments(tiny, paths, [2], settings(tmp_path))
    _, fewer = second_moments(tiny, paths, [1], settings(tmp_path, n_samples=10))
    _, corpus = second_moments(tiny, paths, [1], settings(tmp_path, corpus=load_corpus(str(text))))
    tiny.model.to(torch.float64)
    _, dtype = second_moments(tiny, paths, [1], settings(tmp_path))
    files = [record["mom2_files"][0] for record in (base, layer, fewer, corpus, dtype)]
    assert len(set(files)) == 5
    assert all(record["mom2_computed_layers"] for record in (layer, fewer, corpus, dtype))
    assert corpus["mom2_documents"] == 2 and "notes" in corpus["mom2_corpus"]


@pytest.mark.parametrize(("name", "overrides"), EDITORS)
def test_editor_changes_only_its_down_projections_and_reverts_exactly(tiny, tmp_path, name, overrides):
    editor = build_editor(name, {**FAST, **overrides, "cache_dir": str(tmp_path)})
    before = {key: value.clone() for key, value in tiny.model.state_dict().items()}
    digest = parameters_hash(tiny.model)
    handle = editor.apply(tiny, [BORN, FOUNDED])
    layers = [0, 1, 2, 3] if name == "jeep" else [0, 1]
    touched = {f"model.layers.{layer}.mlp.down_proj.weight" for layer in layers}
    assert set(handle.saved) == touched
    for key, value in tiny.model.state_dict().items():
        assert torch.equal(value, before[key]) == (key not in touched), key
    assert handle.stats["atomic_facts"] == 3 and handle.stats["mom2_corpus"].startswith("ctrl_ripple_sample")
    editor.revert(handle)
    assert parameters_hash(tiny.model) == digest


@pytest.mark.parametrize(("name", "overrides"), EDITORS)
def test_edit_makes_the_target_the_top_prediction(tiny, tmp_path, name, overrides):
    # The prompt ends with the subject: the random tiny model barely moves information between
    # positions, so only the subject's own position can steer its next token.
    fact = AtomicFact("The founders of Veltrix Dynamics", "France", "Veltrix Dynamics")
    strong = {
        **FAST,
        **overrides,
        "cache_dir": str(tmp_path),
        "v_num_grad_steps": 40,
        "clamp_norm_factor": 20.0,
        "v_weight_decay": 0.0,
        "kl_factor": 0.0,
        "mom2_update_weight": 1.0,
    }
    if name == "jeep":
        strong.update(clamp_norm_factor_high=5.0, v_weight_decay_high=0.0, mom2_update_weight_high=1.0)
    if name == "alphaedit":
        strong.update(nullspace_threshold=1.0, l2=1e-6)  # every direction is editable
    target = tiny.tokenizer(" " + fact.target, add_special_tokens=False)["input_ids"][0]

    def target_log_prob() -> tuple[bool, float]:
        with torch.no_grad():
            logits = tiny.model(**tiny.tokenizer(fact.prompt, return_tensors="pt").to(tiny.device)).logits[0, -1]
        return int(logits.argmax()) == target, float(torch.log_softmax(logits, -1)[target])

    assert not target_log_prob()[0]
    handle = build_editor(name, strong).apply(tiny, [Edit(id="v", fact="", atomic_facts=(fact,))])
    is_top, log_prob = target_log_prob()
    assert is_top, handle.stats
    # The closed-form update realises the optimised v*: the edited model scores the target as v* did.
    assert log_prob == pytest.approx(-handle.stats["vstar_target_nll"], abs=0.05)


def test_alphaedit_update_vanishes_on_the_preserved_keys(tiny, tmp_path):
    corpus = tmp_path / "few.txt"
    corpus.write_text("Kenya is a country.\nThe capital of Malaysia.\n")  # fewer tokens than key dims
    paths = resolve_paths(tiny.model)
    stats = settings(tmp_path, corpus=load_corpus(str(corpus)))
    covariance = second_moments(tiny, paths, [1], stats)[0][1]
    threshold = 1e-6 * float(torch.linalg.eigvalsh(covariance.double()).max())
    editor = build_editor(
        "alphaedit",
        {
            **FAST,
            "layers": "0-1",
            "mom2_dataset": str(corpus),
            "mom2_max_length": 64,
            "mom2_n_samples": 30,
            "cache_dir": str(tmp_path),
            "nullspace_threshold": threshold,
        },
    )
    weight = tiny.model.model.layers[1].mlp.down_proj.weight
    before = weight.detach().clone()
    handle = editor.apply(tiny, [BORN, FOUNDED])
    update = weight.detach() - before
    assert 0 < handle.stats["null_space_dims"][1] < 64 and update.norm() > 0
    eigenvalues, vectors = torch.linalg.eigh(covariance.double())
    preserved = vectors[:, eigenvalues >= threshold].float()  # the span of the corpus keys
    assert (update @ preserved).norm() < 1e-4 * update.norm()
    editor.revert(handle)


def test_alphaedit_keeps_applied_keys_until_the_edit_is_reverted(tiny, tmp_path):
    editor = build_editor("alphaedit", {**FAST, "layers": "0-1", "cache_dir": str(tmp_path)})
    first = editor.apply(tiny, [BORN])
    after_first = {name: value.clone() for name, value in editor.preserved.items()}
    assert set(after_first) == {"model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.weight"}
    second = editor.apply(tiny, [FOUNDED])
    grown = editor.preserved["model.layers.1.mlp.down_proj.weight"]
    assert not torch.equal(grown, after_first["model.layers.1.mlp.down_proj.weight"])
    editor.revert(second)
    assert all(torch.equal(editor.preserved[name], value) for name, value in after_first.items())
    editor.revert(first)
    assert editor.preserved == {}


@pytest.mark.parametrize("name", ["memit", "alphaedit", "jeep"])
def test_edits_without_atomic_facts_are_refused_with_the_edit_id(tiny, name):
    editor = build_editor(name, FAST)
    bare = Edit(id="ctrl-17", fact="Elizabeth Ruiz was born in Kenya.")
    with pytest.raises(ValueError, match=r"Edit 'ctrl-17' has no atomic facts.*task must provide 'atomic_facts'"):
        editor.apply(tiny, [bare])
    wrong = Edit(id="x", fact="f", atomic_facts=(AtomicFact("Someone was born in", "Kenya", "Elizabeth Ruiz"),))
    with pytest.raises(ValueError, match="subject 'Elizabeth Ruiz' is not a substring"):
        editor.apply(tiny, [wrong])


def test_jeep_needs_its_low_layers_below_its_high_layers(tiny):
    with pytest.raises(ValueError, match=r"low layers \[1, 2\] must all lie below its high layers \[2, 3\]"):
        build_editor("jeep", {"layers": "1-2", "high_layers": "2-3"}).check(tiny.model.config)


def test_presets_carry_table_26_for_llama_3_2_1b():
    editor = build_editor("memit_llama3_1b")
    config = editor.config
    assert (config.layers, config.clamp_norm_factor, config.v_num_grad_steps, config.v_lr) == ("1-5", 0.75, 20, 0.5)
    assert (config.v_weight_decay, config.kl_factor, config.mom2_update_weight) == (0.5, 0.0625, 20000.0)
    assert config.mom2_n_samples == 100000 and config.rewrite_module_tmp == "model.layers.{}.mlp.down_proj"


def test_memit_edits_gpt2_conv1d_projections_and_reverts(tiny, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from ripplebench.core.models import LoadedModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=3, n_embd=32, n_head=2, vocab_size=len(tiny.tokenizer), n_positions=128)
    gpt2 = LoadedModel("tiny-gpt2", GPT2LMHeadModel(config).eval(), tiny.tokenizer)
    digest = parameters_hash(gpt2.model)
    editor = build_editor("memit", {**FAST, "layers": "0-1", "cache_dir": str(tmp_path)})
    handle = editor.apply(gpt2, [FOUNDED])
    assert set(handle.saved) == {"transformer.h.0.mlp.c_proj.weight", "transformer.h.1.mlp.c_proj.weight"}
    assert parameters_hash(gpt2.model) != digest
    editor.revert(handle)
    assert parameters_hash(gpt2.model) == digest
