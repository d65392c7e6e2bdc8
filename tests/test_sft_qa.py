"""`ripplebench sft-qa` on the tiny model: data selection, the saved model, the CLI."""

from __future__ import annotations

import json

import pytest

from ripplebench.core.models import load_model, resolve_model
from ripplebench.harness.cli import main
from ripplebench.harness.sft_qa import (
    RIPPLE_QA_SETTINGS,
    TRIVIAQA_SETTINGS,
    QAPair,
    override_settings,
    prepare_qa_model,
    read_qa_file,
    select_pairs,
)

INSTANCE = {
    "text": "Elizabeth Ruiz was born in Kenya.",
    "questions": [
        {
            "alias_question": "a?",
            "unalias_question": "What is the currency of Kenya?",
            "answer": "Kenyan shilling",
            "answer_aliases": ["KES"],
        },
        {"alias_question": "b?", "unalias_question": "What is the capital of Kenya?", "answer": "Nairobi"},
    ],
}


def write_lines(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_table_23_settings():
    assert (TRIVIAQA_SETTINGS.lr, TRIVIAQA_SETTINGS.epochs, TRIVIAQA_SETTINGS.batch_size) == (1e-5, 2, 128)
    assert (RIPPLE_QA_SETTINGS.lr, RIPPLE_QA_SETTINGS.epochs, RIPPLE_QA_SETTINGS.batch_size) == (2e-6, 2, 10)
    for settings in (TRIVIAQA_SETTINGS, RIPPLE_QA_SETTINGS):
        assert (settings.max_length, settings.warmup_ratio, settings.weight_decay) == (256, 0.03, 0.1)


def test_qa_files_accept_plain_pairs_and_controlled_ripple_instances(tmp_path):
    path = write_lines(
        tmp_path / "qa.jsonl", [INSTANCE, {"question": "Who wrote Hamlet?", "answer": ["Shakespeare", "W. S."]}]
    )
    assert read_qa_file(path) == [
        QAPair("What is the currency of Kenya?", ("Kenyan shilling", "KES")),
        QAPair("What is the capital of Kenya?", ("Nairobi",)),
        QAPair("Who wrote Hamlet?", ("Shakespeare", "W. S.")),
    ]
    write_lines(tmp_path / "bad.jsonl", [{"prompt": "x"}])
    with pytest.raises(ValueError, match=r"bad.jsonl:1: expected 'question' and 'answer'"):
        read_qa_file(tmp_path / "bad.jsonl")


def test_pair_selection_is_distinct_seeded_and_skips_held_out_questions():
    pairs = [QAPair(f"Q{i}?", ("a",)) for i in range(20)] + [QAPair("q1?", ("dup",))]
    chosen = select_pairs(pairs, 5, seed=3, exclude=[QAPair("Q2?", ("a",))])
    assert len(chosen) == 5 and chosen == select_pairs(pairs, 5, seed=3, exclude=[QAPair("Q2?", ("a",))])
    everything = select_pairs(pairs, None, seed=3, exclude=[QAPair("Q2?", ("a",))])
    assert len(everything) == 19 and "Q2?" not in {p.question for p in everything}


def test_sft_qa_saves_a_loadable_model_with_its_report(tiny, tmp_path):
    stage1 = write_lines(tmp_path / "trivia.jsonl", [{"question": "Who wrote Hamlet?", "answer": "Shakespeare"}] * 3)
    stage2 = write_lines(tmp_path / "train.jsonl", [INSTANCE])
    held_out = write_lines(
        tmp_path / "valid.jsonl", [{"question": "What is the capital of Kenya?", "answer": "Nairobi"}]
    )
    output = tmp_path / "models" / "tiny-qa"
    prepare_qa_model(
        tiny, output, prompt_format="chat", stage1=str(stage1), stage2=stage2, evaluation=held_out, log=lambda _: None
    )
    report = json.loads((output / "sft_qa.json").read_text())
    assert report["stage1"]["pairs"] == 1  # duplicates are dropped
    assert report["stage2"]["pairs"] == 1  # the held-out question is not trained on
    assert report["evaluation_questions_trained_on"] == 0
    assert report["stage2"]["settings"]["lr"] == 2e-6
    assert report["before"]["questions"] == report["after"]["questions"] == 1
    assert sorted(p.name for p in output.parent.iterdir()) == ["tiny-qa"]  # no partial folder left
    reloaded = load_model(resolve_model(str(output)))
    assert reloaded.tokenizer.chat_template == tiny.tokenizer.chat_template
    with pytest.raises(ValueError, match="already exists"):
        prepare_qa_model(tiny, output, prompt_format="chat", stage1="none", stage2=stage2, log=lambda _: None)


def test_sft_qa_command(tiny_model_dir, tmp_path, capsys):
    stage2 = write_lines(tmp_path / "train.jsonl", [INSTANCE])
    output = tmp_path / "out"
    assert (
        main(
            [
                "sft-qa",
                "--model",
                str(tiny_model_dir),
                "--output",
                str(output),
                "--stage1",
                "none",
                "--stage2",
                str(stage2),
                "--stage2-set",
                "epochs=1",
            ]
        )
        == 0
    )
    assert (output / "config.json").is_file() and "stage 1 skipped" in capsys.readouterr().out
    evaluation = write_lines(
        tmp_path / "valid.jsonl", [{"question": "What is the capital of Kenya?", "answer": "Nairobi"}]
    )
    paper_setting = tmp_path / "paper"
    assert (
        main(
            [
                "sft-qa",
                "--model",
                str(tiny_model_dir),
                "--output",
                str(paper_setting),
                "--stage1",
                "none",
                "--stage2",
                str(stage2),
                "--stage2-set",
                "epochs=1",
                "--eval",
                str(evaluation),
                "--train-on-eval",
            ]
        )
        == 0
    )
    report = json.loads((paper_setting / "sft_qa.json").read_text())
    assert report["stage2"]["pairs"] == 2 and report["evaluation_questions_trained_on"] == 1
    with pytest.raises(SystemExit, match="Stage-2 QA data .*does not exist"):
        main(
            [
                "sft-qa",
                "--model",
                str(tiny_model_dir),
                "--output",
                str(tmp_path / "o2"),
                "--stage2",
                str(tmp_path / "no.jsonl"),
            ]
        )


def test_training_settings_can_be_overridden_by_name():
    changed = override_settings(RIPPLE_QA_SETTINGS, ["lr=1e-5", "epochs=3"])
    assert (changed.lr, changed.epochs, changed.batch_size) == (1e-5, 3, 10)
    with pytest.raises(
        ValueError, match=r"Unknown setting\(s\) learning_rate .*\(--stage1-set\)\. Valid: batch_size, epochs"
    ):
        override_settings(RIPPLE_QA_SETTINGS, ["learning_rate=1"], "--stage1-set")
    with pytest.raises(ValueError, match="Setting 'epochs' .* must be an integer"):
        override_settings(RIPPLE_QA_SETTINGS, ["epochs=two"])


def test_prepare_embedded_builds_the_alias_once_with_its_model_card(tiny_model_dir, tmp_path, monkeypatch, capsys):
    from dataclasses import replace

    import ripplebench.harness.embedded_qa as embedded

    assert (embedded.STAGE2_SETTINGS.lr, embedded.STAGE2_SETTINGS.epochs, embedded.STAGE2_SETTINGS.batch_size) == (
        1e-5,
        3,
        10,
    )
    monkeypatch.setenv("RIPPLEBENCH_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    stage2 = write_lines(data / "train.jsonl", [INSTANCE])
    other = {"alias_question": "c?", "unalias_question": "What is the capital of Peru?", "answer": "Lima"}
    write_lines(data / "validation.jsonl", [dict(INSTANCE, questions=[INSTANCE["questions"][1], other])])
    write_lines(data / "test_ood_entity.jsonl", [dict(INSTANCE, questions=[other])])
    with pytest.raises(ValueError, match="Build it with: ripplebench prepare-embedded"):
        resolve_model("smollm2-135m-qa")

    folder = embedded.prepare_embedded(
        base=str(tiny_model_dir),
        stage2=stage2,
        validation=data / "validation.jsonl",
        eval_questions=1,
        settings=replace(embedded.STAGE2_SETTINGS, epochs=1),
        log=lambda _: None,
    )
    assert folder == tmp_path / "cache" / "models" / "smollm2-135m-qa"
    assert resolve_model("smollm2-135m-qa").path == str(folder)
    report = json.loads((folder / "sft_qa.json").read_text())
    assert report["stage2"]["pairs"] == 2 and report["stage2"]["settings"]["lr"] == 1e-5 and "stage1" not in report
    assert report["after"]["questions"] == 1 and report["evaluation_questions_trained_on"] == 1
    card = (folder / "README.md").read_text()
    assert "## The evaluation splits' single-hop facts were trained on" in card and "as the paper does" in card
    assert "| validation | 1 of 2 |" in card and "| test_ood_entity | 0 of 1 |" in card
    assert f"| smollm2-135m-qa | {report['after']['exact_match']:.3f} |" in card

    # Reruns reuse the built model without loading or training anything.
    monkeypatch.setattr(embedded, "load_model", lambda *a, **k: pytest.fail("the built model must be reused"))
    assert main(["prepare-embedded"]) == 0
    assert f"smollm2-135m-qa: {folder}" in capsys.readouterr().out
