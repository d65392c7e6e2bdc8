"""Editors: exact revert, the Prepend wording, CPT's layer range, config errors, presets."""

from __future__ import annotations

import pytest
from helpers import parameters_hash

from ripplebench.editors import Edit, available_editors, build_editor
from ripplebench.editors.base import AtomicFact

EDIT = Edit(
    id="e1",
    fact="Adam Jacobson was born in Kenya.",
    atomic_facts=(AtomicFact("Adam Jacobson was born in", "Kenya", "Adam Jacobson"),),
    subject_type="person",
)
OTHER = Edit(id="e2", fact="Veltrix Dynamics was founded in France.", subject_type="company")

EDITOR_SETUPS = [
    ("none", {}),
    ("prepend", {}),
    ("cpt", {}),
    ("cpt", {"layers": "1-2", "lr": 1e-2}),
    ("cpt_mid_upper_llama3_1b", {"layers": "3"}),
]


@pytest.mark.parametrize(("name", "overrides"), EDITOR_SETUPS)
def test_apply_then_revert_restores_every_parameter_bit_for_bit(tiny, name, overrides):
    editor = build_editor(name, overrides)
    before = parameters_hash(tiny.model)
    handle = editor.apply(tiny, [EDIT, OTHER])
    if name.startswith("cpt"):
        assert parameters_hash(tiny.model) != before, "CPT should change the weights it trains"
    editor.revert(handle)
    assert parameters_hash(tiny.model) == before


def test_cpt_layer_range_touches_only_those_layers(tiny):
    editor = build_editor("cpt", {"layers": "1-2", "lr": 1e-2})
    untouched = {
        n: p.detach().clone()
        for n, p in tiny.model.named_parameters()
        if ".layers.1." not in n and ".layers.2." not in n
    }
    handle = editor.apply(tiny, [EDIT])
    assert handle.saved and all(".layers.1." in n or ".layers.2." in n for n in handle.saved)
    for name, parameter in tiny.model.named_parameters():
        if name in untouched:
            assert parameter.equal(untouched[name]), name
    editor.revert(handle)


def test_cpt_follows_table_24_defaults_and_counts_training_tokens(tiny):
    editor = build_editor("cpt")
    assert (editor.config.lr, editor.config.epochs, editor.config.batch_size) == (1e-5, 4, 1)
    assert (editor.config.weight_decay, editor.config.max_grad_norm) == (0.1, 1.0)
    handle = editor.apply(tiny, [EDIT])
    fact_tokens = len(tiny.tokenizer(EDIT.fact)["input_ids"])
    assert handle.stats["train_tokens"] == 4 * fact_tokens
    editor.revert(handle)


def test_cpt_leaves_grad_flags_and_eval_mode_as_they_were(tiny):
    editor = build_editor("cpt", {"layers": "0"})
    editor.revert(editor.apply(tiny, [EDIT]))
    assert not tiny.model.training
    assert all(p.requires_grad for p in tiny.model.parameters())
    assert all(p.grad is None for p in tiny.model.parameters())


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (EDIT, "Imagine that someone named Adam Jacobson was born in Kenya.\n"),
        (OTHER, "Imagine that a company named Veltrix Dynamics was founded in France.\n"),
        (Edit(id="r", fact="The capital of Kenya is Mombasa."), "Imagine that the capital of Kenya is Mombasa.\n"),
    ],
)
def test_prepend_uses_the_papers_wording_per_subject_type(tiny, edit, expected):
    handle = build_editor("prepend").apply(tiny, [edit])
    assert handle.context == expected


def test_unknown_editor_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"Unknown editor 'memitt'.*none.*prepend.*cpt"):
        build_editor("memitt")


def test_unknown_config_field_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown setting\(s\) learning_rate.*Valid: .*lr"):
        build_editor("cpt", {"learning_rate": 1e-4})


def test_layer_range_outside_the_model_is_refused_by_check(tiny):
    editor = build_editor("cpt", {"layers": "2-9"})
    with pytest.raises(ValueError, match=r"Layer range '2-9' is outside the model: valid layers are 0-3"):
        editor.check(tiny.model.config)
    with pytest.raises(ValueError, match="not of the form"):
        build_editor("cpt", {"layers": "top"}).check(tiny.model.config)


def test_presets_resolve_to_their_editor_with_overrides_on_top():
    editor = build_editor("cpt_mid_upper", {"lr": 3e-5})
    assert type(editor).name == "cpt"
    assert (editor.config.layers, editor.config.lr) == ("19-22", 3e-5)
    assert available_editors()["cpt_mid_upper"].source == "preset"


def test_config_file_values_apply(tmp_path):
    path = tmp_path / "my_cpt.yaml"
    path.write_text("lr: 2.0e-5\nepochs: 2\n")
    editor = build_editor("cpt", {"epochs": 3}, config_file=path)
    assert (editor.config.lr, editor.config.epochs) == (2e-5, 3)
