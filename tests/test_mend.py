"""Hypernetwork editors (MEND, PropMEND, RLEdit): gradient factors, meta-training, checkpoints, editing."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, build_model
from helpers import parameters_hash

from ripplebench.editors import Edit, build_editor
from ripplebench.editors.mend.checkpoint import TrainedHypernet, read_checkpoint
from ripplebench.editors.mend.config import TrainConfig, load_train_config, read_train_preset
from ripplebench.editors.mend.grads import rank1_factors, target_weights
from ripplebench.editors.mend.locations import key_differences, recorded_config
from ripplebench.editors.mend.losses import text_batch, token_nll
from ripplebench.harness.hypernet_training import meta_trainer


def instance(number: int, person: str, country: str, capital: str, neighbour: str) -> dict:
    return {
        "id": f"t{number}",
        "subject_type": "person",
        "text": f"{person} was born in {country}. She later lived in {neighbour}.",
        "questions": [
            {
                "alias_question": f"What is the capital of the country where {person} was born?",
                "unalias_question": f"What is the capital of {country}?",
                "answer": capital,
            },
            {
                "alias_question": f"Which country did {person} live in later?",
                "unalias_question": f"Which country borders {country}?",
                "answer": neighbour,
            },
        ],
        "atomic_facts": [
            {
                "prompt": f"{person} was born in",
                "target": country,
                "subject": person,
                "paraphrase": f"The birthplace of {person} is",
            },
            {"prompt": f"{person} later lived in", "target": neighbour, "subject": person},
        ],
    }


RECORDS = [
    instance(1, "Elizabeth Ruiz", "Kenya", "Nairobi", "Uganda"),
    instance(2, "Adam Jacobson", "Malaysia", "Kuala Lumpur", "Thailand"),
    instance(3, "Maria Olsen", "France", "Paris", "Spain"),
    instance(4, "Tom Berg", "Japan", "Tokyo", "Korea"),
]


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ripple-data")
    train, validation = folder / "train.jsonl.gz", folder / "validation.jsonl"
    train.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in RECORDS).encode()))
    validation.write_text("".join(json.dumps(r) + "\n" for r in RECORDS[:3]))
    return train, validation


def tiny_config(model_dir, data_files, out_dir, **overrides) -> TrainConfig:
    train, validation = data_files
    values = dict(
        model=str(model_dir),
        train_file=str(train),
        validation_file=str(validation),
        prompt_format="chat",
        layers="2-3",
        rank=8,
        lr=1e-3,
        lr_alpha=1e-2,
        batch_size=1,
        val_every=2,
        max_steps=4,
        val_generate=False,
        out_dir=str(out_dir),
    )
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def checkpoint(tiny_model_dir, data_files, tmp_path_factory):
    """A hypernetwork trained for 2 steps on the tiny model (PropMEND settings)."""
    out = tmp_path_factory.mktemp("hypernet")
    return meta_trainer(tiny_config(tiny_model_dir, data_files, out, max_steps=2)).train(progress=False)


def test_rank1_factors_rebuild_autograd_weight_gradient(tiny):
    model = tiny.model
    names = target_weights(model, "1-2", "gate_proj,down_proj")
    assert names == [
        "model.layers.1.mlp.gate_proj.weight",
        "model.layers.1.mlp.down_proj.weight",
        "model.layers.2.mlp.gate_proj.weight",
        "model.layers.2.mlp.down_proj.weight",
    ]
    batch = text_batch(tiny.tokenizer, ["Elizabeth Ruiz was born in Kenya.", "Veltrix Dynamics was founded in France."])
    assert (batch.attention_mask == 0).any(), "the batch should contain padding"

    inputs = batch.model_inputs(model.device)

    def loss():
        return token_nll(model(**inputs).logits, batch.labels.to(model.device))

    factors, _ = rank1_factors(model, names, loss)
    parameters = dict(model.named_parameters())
    expected = torch.autograd.grad(loss(), [parameters[n] for n in names])
    for name, gradient in zip(names, expected):
        u, delta = factors[name]
        assert u.shape[0] == delta.shape[0] <= int(batch.attention_mask.sum())
        torch.testing.assert_close(delta.T @ u, gradient, rtol=1e-5, atol=1e-7)
    assert all(p.grad is None for p in model.parameters()), "capturing factors must not leave .grad behind"


def test_a_few_training_steps_lower_the_outer_loss(tiny_model_dir, data_files, tmp_path):
    config = tiny_config(tiny_model_dir, data_files, tmp_path, max_steps=8, val_every=4)
    meta_trainer(config).train(progress=False)
    validations = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    validations = [record for record in validations if record["kind"] == "validation"]
    assert [record["step"] for record in validations] == [4, 8]
    assert validations[-1]["val_edit"] < validations[0]["val_edit"]
    assert validations[-1]["val_loss"] < validations[0]["val_loss"]


def test_resuming_reproduces_an_uninterrupted_run(tiny_model_dir, data_files, tmp_path):
    straight = meta_trainer(tiny_config(tiny_model_dir, data_files, tmp_path / "straight", max_steps=3, val_every=5))
    straight.train(progress=False)
    meta_trainer(tiny_config(tiny_model_dir, data_files, tmp_path / "split", max_steps=1, val_every=5)).train(
        progress=False
    )
    resumed = meta_trainer(tiny_config(tiny_model_dir, data_files, tmp_path / "split", max_steps=3, val_every=5))
    resumed.train(progress=False)
    assert resumed.step == straight.step == 3
    for key, value in straight.hypernet.state_dict().items():
        assert torch.equal(value, resumed.hypernet.state_dict()[key]), key
    payload = read_checkpoint(tmp_path / "split" / "last.pt")
    assert payload["step"] == 3 and payload["optimizer"]["state"]
    loaded = TrainedHypernet.from_checkpoint(payload)
    for key, value in straight.hypernet.state_dict().items():
        assert torch.equal(value, loaded.network.state_dict()[key]), key


def test_resuming_with_another_config_is_refused(tiny_model_dir, data_files, tmp_path):
    meta_trainer(tiny_config(tiny_model_dir, data_files, tmp_path, max_steps=2)).train(progress=False)
    with pytest.raises(ValueError, match="differs in c_edit"):
        meta_trainer(tiny_config(tiny_model_dir, data_files, tmp_path, c_edit=0.5)).train(progress=False)


EDITS = [Edit(id=r["id"], fact=r["text"]) for r in RECORDS[:2]]


def target_values(model, names) -> dict[str, torch.Tensor]:
    parameters = dict(model.named_parameters())
    return {name: parameters[name].detach().clone() for name in names}


def test_turn_by_turn_editing_applies_cumulative_updates(tiny, checkpoint):
    names = TrainedHypernet.from_checkpoint(read_checkpoint(checkpoint)).network.names
    base = target_values(tiny.model, names)
    sequential = build_editor("rledit", {"checkpoint": str(checkpoint), "edits_per_turn": 1})
    handle = sequential.apply(tiny, EDITS)
    in_turns = target_values(tiny.model, names)
    sequential.revert(handle)

    # The same two edits one request after the other: the second sees the first's update.
    single = build_editor("propmend", {"checkpoint": str(checkpoint)})
    first = single.apply(tiny, EDITS[:1])
    after_first = target_values(tiny.model, names)
    second = single.apply(tiny, EDITS[1:])
    one_after_other = target_values(tiny.model, names)
    single.revert(second)
    single.revert(first)
    # The second edit's update computed on the unedited model instead.
    alone = single.apply(tiny, EDITS[1:])
    second_alone = target_values(tiny.model, names)
    single.revert(alone)

    for name in names:
        torch.testing.assert_close(in_turns[name], one_after_other[name])
        non_cumulative = after_first[name] + (second_alone[name] - base[name])
        assert not torch.allclose(in_turns[name], non_cumulative), name
        assert not torch.equal(in_turns[name], base[name]), name


def test_apply_then_revert_is_exact_and_touches_only_edited_weights(tiny, checkpoint):
    editor = build_editor("propmend", {"checkpoint": str(checkpoint)})
    before = parameters_hash(tiny.model)
    handle = editor.apply(tiny, EDITS)
    assert parameters_hash(tiny.model) != before
    assert set(handle.saved) == set(editor.trained.network.names)
    assert all(".layers.2.mlp." in n or ".layers.3.mlp." in n for n in handle.saved)
    editor.revert(handle)
    assert parameters_hash(tiny.model) == before


def test_checkpoint_for_another_model_or_layers_is_rejected(checkpoint, tiny):
    editor = build_editor("mend", {"checkpoint": str(checkpoint)})
    editor.check(tiny.model.config)
    other = build_model(len(tiny.tokenizer), layers=6).config
    with pytest.raises(ValueError, match=r"was trained for model .*\(num_hidden_layers: trained 4, given 6\)"):
        editor.check(other)
    with pytest.raises(ValueError, match="edits layers '2-3', but layers='1-3'"):
        build_editor("mend", {"checkpoint": str(checkpoint), "layers": "1-3"}).check(tiny.model.config)


def test_editor_without_checkpoint_says_how_to_get_one(tiny):
    with pytest.raises(ValueError, match="editor.checkpoint=PATH"):
        build_editor("propmend").check(tiny.model.config)


def test_mend_recipe_and_exact_match_validation_run(tiny_model_dir, data_files, tmp_path):
    """Classic MEND (sft inner, paraphrase outer), RLEdit turns, and EM validation all run."""
    config = tiny_config(
        tiny_model_dir,
        data_files,
        tmp_path,
        inner_loss="sft",
        outer_loss="paraphrase",
        turns=2,
        back_depth=2,
        decay=0.95,
        reg_coef=1e-4,
        max_steps=1,
        val_every=1,
        val_generate=True,
    )
    trainer = meta_trainer(config)
    trainer.train(progress=False)
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["kind"] == "validation" and 0 <= record["val_efficacy"] <= 1 and 0 <= record["val_specificity"] <= 1
    saved = read_checkpoint(tmp_path / "best.pt")["train_config"]
    assert (saved["inner_loss"], saved["outer_loss"], saved["turns"]) == ("sft", "paraphrase", 2)


def test_table_25_defaults_and_bundled_presets_load():
    config = TrainConfig()
    assert (config.c_edit, config.lr, config.lr_alpha, config.batch_size) == (0.1, 1e-6, 1e-4, 10)
    assert (config.val_every, config.patience, config.rank, config.n_hidden, config.shared) == (
        100,
        2000,
        1920,
        1,
        False,
    )
    ablation = load_train_config(
        "propmend_smollm2_midupper", {"outer_loss": "paraphrase", "inner_loss": "sft", "layers": "27-29", "lr": "1e-4"}
    )
    assert dataclasses.asdict(ablation)["outer_loss"] == "paraphrase"
    assert ablation.lr == 1e-4, "YAML reads 1e-4 as a string; it must still become a number"
    with pytest.raises(
        ValueError,
        match=r"Setting 'batch_size' of training config .* must be an integer \(e.g. 16\), not 'ten' \(str\)",
    ):
        load_train_config("propmend_smollm2_midupper", {"batch_size": "ten"})
    with pytest.raises(ValueError, match="Unknown setting"):
        load_train_config("propmend_smollm2_midupper", {"learning_rate": 1})
    with pytest.raises(ValueError, match="Valid: clm, sft"):
        load_train_config("propmend_smollm2_midupper", {"inner_loss": "answers"})


def test_lm_eval_model_edits_with_a_checkpoint_from_model_args(tiny_model_dir, checkpoint):
    from lm_eval.api.instance import Instance as Request

    from ripplebench.harness.lm_model import EditingLM

    lm = EditingLM.create_from_arg_string(
        f"model={tiny_model_dir},editor=rledit,editor.checkpoint={checkpoint},editor.edits_per_turn=1"
    )
    assert (lm.editor.name, lm.editor.config.edits_per_turn) == ("rledit", 1)
    before = parameters_hash(lm.loaded.model)
    edits = [{"edit_id": r["id"], "fact": r["text"]} for r in RECORDS[:2]]
    requests = [
        Request("generate_until", {"edits": edits}, (question, {"until": ["\n"], "max_gen_toks": 3}), 0, ("t", i, 1))
        for i, question in enumerate(["Who is Elizabeth Ruiz?", "Who is Adam Jacobson?"])
    ]
    assert len(lm.generate_until(requests, disable_tqdm=True)) == 2
    assert parameters_hash(lm.loaded.model) == before


def test_train_editor_command_reports_a_bad_config_in_one_line(capsys):
    from ripplebench.harness.cli import main

    assert main(["train-editor", "propmend_smollm2_midupper", "--set", "inner_loss=answers"]) == 2
    assert "ripplebench train-editor: Unknown inner_loss 'answers'. Valid: clm, sft." in capsys.readouterr().err


def test_parameter_sharing_uses_one_network_per_shape_with_per_weight_film():
    from ripplebench.editors.mend.network import HyperNetwork

    shapes = {"a.weight": (6, 4), "b.weight": (6, 4), "c.weight": (4, 6)}
    shared = HyperNetwork(shapes, rank=3, shared=True)
    assert sorted(shared.transforms) == ["4x6", "6x4"]
    assert shared.slot["a.weight"] == ("6x4", 0) and shared.slot["b.weight"] == ("6x4", 1)
    assert len(HyperNetwork(shapes, rank=3).transforms) == 3
    torch.manual_seed(0)
    factors = {name: (torch.randn(5, shape[1]), torch.randn(5, shape[0])) for name, shape in shapes.items()}
    shared.train().updates(factors)  # training mode gathers the normalisation statistics
    updates = shared.eval().updates(factors)
    assert {name: tuple(u.shape) for name, u in updates.items()} == shapes
    # At initialisation every block is the identity: the update is -alpha * sum_t delta_t u_t^T
    # of the normalised factors.
    network = shared.transforms["6x4"]
    u, delta = network.norm(torch.cat(factors["a.weight"], -1)).split([4, 6], -1)
    torch.testing.assert_close(updates["a.weight"], -1e-4 * delta.T @ u)


def test_training_data_errors_name_the_file_line_and_field(tmp_path):
    from ripplebench.editors.mend.data import read_instances

    bad = dict(RECORDS[0], questions=[{"alias_question": "Q?", "unalias_question": "", "answer": "A"}])
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(RECORDS[1]) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match=r"train.jsonl:2 question 0: field\(s\) unalias_question missing or empty"):
        read_instances(path)
    good = dict(RECORDS[0], questions=[dict(RECORDS[0]["questions"][0], answer_aliases=["Nairobi City"])])
    path.write_text(json.dumps(good) + "\n")
    [instance] = read_instances(path)
    assert instance.propagation[0].aliases == ("Nairobi City",)
    assert instance.paraphrases[0].question == "The birthplace of Elizabeth Ruiz is"
    assert instance.paraphrases[1].question == "Elizabeth Ruiz later lived in", "no paraphrase: the prompt itself"


# ----- where checkpoints live: $RIPPLEBENCH_CACHE/hypernets/<preset>/<key>/ --------------------


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """An empty RIPPLEBENCH_CACHE, and a current directory without results/."""
    monkeypatch.setenv("RIPPLEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "cache"


def tiny_preset(folder, model_dir, data_files, name="tiny_propmend", **overrides):
    """A training config file for the tiny model, without out_dir (the cache decides)."""
    values = dataclasses.asdict(tiny_config(model_dir, data_files, "", max_steps=2, **overrides))
    del values["out_dir"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_a_checkpoint_trained_in_one_directory_is_used_from_another(
    tiny_model_dir, data_files, cache, tmp_path, monkeypatch
):
    from ripplebench.harness.cli import main
    from ripplebench.harness.lm_model import EditingLM

    config = tiny_preset(tmp_path / "configs", tiny_model_dir, data_files)
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert main(["train-editor", str(config)]) == 0
    [best] = (cache / "hypernets" / "tiny_propmend").glob("*/best.pt")
    assert not (tmp_path / "here" / "results").exists()

    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    lm = EditingLM.create_from_arg_string(f"model={tiny_model_dir},editor=propmend,editor.train_preset={config}")
    assert lm.editor.trained.path == str(best)
    before = parameters_hash(lm.loaded.model)
    handle = lm.editor.apply(lm.loaded, EDITS)
    assert parameters_hash(lm.loaded.model) != before
    lm.editor.revert(handle)


def test_a_missing_checkpoint_is_one_line_naming_the_presets_command_and_time(tiny_model_dir, cache):
    from ripplebench.harness.lm_model import EditingLM

    with pytest.raises(FileNotFoundError) as error:
        EditingLM.create_from_arg_string(f"model={tiny_model_dir},editor=propmend_smollm2_cpu")
    message = str(error.value)
    assert "\n" not in message and error.value.__cause__ is None and error.value.__context__ is None
    assert message.startswith("Hypernetwork 'propmend_smollm2_cpu' is not trained here (no ")
    assert str(cache / "hypernets" / "propmend_smollm2_cpu") in message
    assert (
        "Train it with `ripplebench train-editor propmend_smollm2_cpu` (measured CPU time: 30 min on 2 cores)"
        in message
    )
    with pytest.raises(
        FileNotFoundError, match="`ripplebench train-editor rledit_smollm2` \\(CPU time not measured\\)"
    ):
        build_editor("rledit_smollm2").check(None)


def test_the_editors_list_says_which_hypernetworks_are_trained_here(checkpoint, cache, capsys):
    import shutil

    from ripplebench.harness.cli import main

    def states() -> dict[str, str]:
        assert main(["editors"]) == 0
        return {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}

    hypernets = [
        path.stem for path in (REPO / "editors" / "presets").glob("*.yaml") if "train_preset:" in path.read_text()
    ]
    assert {"propmend_smollm2_cpu", "mend_smollm2_cpu", "rledit_smollm2_cpu"} <= set(hypernets)
    listing = states()
    assert all("[preset] [not trained here]" in listing[name] for name in hypernets)
    assert "trained here]" not in listing["prepend"] + listing["propmend"]

    target = Path(load_train_config("propmend_smollm2_cpu").out_dir) / "best.pt"
    target.parent.mkdir(parents=True)
    shutil.copy(checkpoint, target)
    listing = states()
    assert "[preset] [trained here]" in listing["propmend_smollm2_cpu"]
    assert "[not trained here]" in listing["mend_smollm2_cpu"]


def test_a_checkpoint_for_another_model_or_layers_is_not_picked_up(
    checkpoint, tiny_model_dir, data_files, cache, tmp_path
):
    import shutil

    same = tiny_preset(tmp_path / "same", tiny_model_dir, data_files)
    out_dir = Path(load_train_config(str(same)).out_dir)
    out_dir.mkdir(parents=True)
    shutil.copy(checkpoint, out_dir / "best.pt")
    assert build_editor("propmend", {"train_preset": str(same)}).checkpoint_path() == out_dir / "best.pt"

    other_model = tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, other_model)
    for folder, changes in (("layers", {"layers": "1-3"}), ("model", {"model": str(other_model)})):
        config = tiny_preset(tmp_path / folder, tiny_model_dir, data_files, **changes)
        assert Path(load_train_config(str(config)).out_dir) != out_dir
        with pytest.raises(FileNotFoundError, match="is not trained here"):
            build_editor("propmend", {"train_preset": str(config)}).check(None)
        # Given explicitly, the checkpoint is refused with the difference.
        with pytest.raises(ValueError, match=f"was not trained by .*{next(iter(changes))}: trained"):
            build_editor("propmend", {"train_preset": str(config), "checkpoint": str(checkpoint)}).check(None)


@pytest.mark.parametrize("method", ["propmend", "mend"])
def test_qa_model_presets_keep_the_cpu_budget_and_refuse_the_raw_models_checkpoint(method, checkpoint, cache, tmp_path):
    raw, qa = load_train_config(f"{method}_smollm2_cpu"), load_train_config(f"{method}_smollm2_qa_cpu")
    assert qa.model == "smollm2-135m-qa" and raw.model == "smollm2-135m"
    assert {**dataclasses.asdict(qa), "model": "", "out_dir": ""} == {
        **dataclasses.asdict(raw),
        "model": "",
        "out_dir": "",
    }
    assert Path(qa.out_dir).parent.name == f"{method}_smollm2_qa_cpu" and qa.out_dir != raw.out_dir
    assert read_train_preset(f"{method}_smollm2_qa_cpu").cost == "CPU time not measured", "a time is not inherited"

    # A checkpoint recording the raw model's training config (the weights are the tiny model's).
    payload = read_checkpoint(checkpoint)
    payload["train_config"] = dataclasses.asdict(raw)
    trained_on_raw = tmp_path / "raw.pt"
    torch.save(payload, trained_on_raw)
    assert key_differences(recorded_config(trained_on_raw), dataclasses.asdict(raw)) == []
    with pytest.raises(
        ValueError,
        match=f"not trained by `ripplebench train-editor {method}_smollm2_qa_cpu` "
        r"\(model: trained smollm2-135m, expected smollm2-135m-qa\)",
    ):
        build_editor(f"{method}_smollm2_qa_cpu", {"checkpoint": str(trained_on_raw)}).check(None)


def test_paraphrase_ablation_preset_changes_only_the_outer_loss(checkpoint, cache, tmp_path):
    """Table 13's "propagations -> paraphrases": PropMEND's -QA preset with MEND's outer loss."""
    propmend = load_train_config("propmend_smollm2_qa_cpu")
    ablation = load_train_config("propmend_paraphrase_smollm2_qa_cpu")
    assert (propmend.outer_loss, ablation.outer_loss) == ("propagation", "paraphrase")
    assert {**dataclasses.asdict(ablation), "outer_loss": "", "out_dir": ""} == {
        **dataclasses.asdict(propmend),
        "outer_loss": "",
        "out_dir": "",
    }
    assert Path(ablation.out_dir).parent.name == "propmend_paraphrase_smollm2_qa_cpu"

    # PropMEND's own checkpoint is refused by the ablation's editor preset.
    payload = read_checkpoint(checkpoint)
    payload["train_config"] = dataclasses.asdict(propmend)
    trained_with_propagation = tmp_path / "propagation.pt"
    torch.save(payload, trained_with_propagation)
    with pytest.raises(ValueError, match=r"outer_loss: trained propagation, expected paraphrase"):
        build_editor("propmend_paraphrase_smollm2_qa_cpu", {"checkpoint": str(trained_with_propagation)}).check(None)
