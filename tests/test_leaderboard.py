"""`ripplebench leaderboard` on hand-made lm-eval runs: cells, ranks, significance, refusals, HTML."""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import pytest
from helpers import requires_controlled_ripple_splits
from test_lm_eval import run_lm_eval

from ripplebench.harness.cli import main
from ripplebench.leaderboards.leaderboard import build_leaderboard
from ripplebench.leaderboards.render import markdown
from ripplebench.tasks.controlled_ripple import utils as controlled_ripple
from ripplebench.tasks.ripple_edit import utils as ripple_edit

TASK = "controlled_ripple_id"
STAMP = "2026-01-01T00-00-00.000001"


def controlled_records(
    efficacy: list[float],
    specificity: list[float],
    relations: list[str] | None = None,
    answers: list[str] | None = None,
) -> list[dict]:
    """Samples in lm-eval's --log_samples layout: an efficacy and a specificity document per question."""
    records = []
    for number, pair in enumerate(zip(efficacy, specificity)):
        for kind, value in zip(("efficacy", "specificity"), pair):
            gold = answers[number] if answers else "A"
            doc = {
                "edit_id": f"e{number // 2}",
                "question_id": number % 2,
                "kind": kind,
                "question": f"Q{number}?",
                "answers": [gold],
                "relation_id": relations[number] if relations else f"r{number % 3}",
            }
            metrics = controlled_ripple.process_results(doc, [gold if value else "no"])  # the task's own scoring
            records.append(
                {
                    "doc_id": len(records),
                    "doc": doc,
                    "filter": "none",
                    "metrics": list(metrics),
                    "doc_hash": f"h{number}{kind}",
                    **metrics,
                }
            )
    return records


def write_run(
    folder: Path,
    editor: str,
    records: list[dict],
    task: str = TASK,
    model: str = "tiny",
    limit: float | None = None,
    stats: dict | None = None,
    config: dict | None = None,
) -> Path:
    """A results file whose config is what `--model editing` records, and the task's sample log."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"samples_{task}_{STAMP}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    record = {"model": model, "editor": editor, "edit_stats": stats or {"edit_groups": 2}, "peak_rss_mb": 512.0}
    config = config or {"model": "editing", "model_args": f"model={model},editor={editor}", "ripplebench": record}
    results = folder / f"results_{STAMP}.json"
    results.write_text(json.dumps({"results": {task: {"alias": task}}, "config": {**config, "limit": limit}}))
    return results


def table(board, title_start: str, model: str = "tiny"):
    return next(t for t in board.tables if t.title.startswith(title_start) and t.model == model)


def cells(tab, editor: str) -> dict:
    row = next(r for r in tab.rows if r.editor == editor)
    return {f"{c.task}:{c.metric}": cell for c, cell in zip(tab.columns, row.cells)}


def test_cells_are_mean_stderr_and_n_with_best_bold_and_second_underlined(tmp_path):
    write_run(tmp_path / "none", "none", controlled_records([1, 0, 0, 0], [1, 1, 1, 0]))
    write_run(tmp_path / "prepend", "prepend", controlled_records([1, 1, 1, 0], [1, 1, 0, 0]))
    write_run(tmp_path / "cpt", "cpt", controlled_records([0, 1, 1, 1], [0, 0, 0, 0]))  # ties prepend's efficacy
    board = build_leaderboard([tmp_path], resamples=200)
    tab = table(board, "Table 2")
    assert [row.editor for row in tab.rows] == ["none", "cpt", "prepend"]  # the baseline first, then as found
    none, prepend, cpt = (cells(tab, e) for e in ("none", "prepend", "cpt"))
    # [1, 0, 0, 0]: mean 0.25; sample variance 0.25, so stderr sqrt(0.25 / 4) = 0.25
    assert (none[f"{TASK}:efficacy"].mean, none[f"{TASK}:efficacy"].stderr, none[f"{TASK}:efficacy"].n) == (
        0.25,
        0.25,
        4,
    )
    assert prepend[f"{TASK}:specificity"].mean == 0.5 and prepend[f"{TASK}:specificity"].stderr == pytest.approx(
        (1 / 3 / 4) ** 0.5
    )
    assert cpt[f"{TASK}:specificity"].stderr == 0.0
    assert [c[f"{TASK}:efficacy"].rank for c in (none, prepend, cpt)] == [2, 1, 1]  # ties share the best rank
    assert [c[f"{TASK}:specificity"].rank for c in (none, prepend, cpt)] == [1, 2, None]
    text = markdown(board)
    assert "| none | <u>25.0 ± 25.0</u> (n=4) | **75.0 ± 25.0** (n=4) |" in text
    assert "| prepend | **75.0 ± 25.0** (n=4) | <u>50.0 ± 28.9</u> (n=4) |" in text
    assert "| cpt | **75.0 ± 25.0** (n=4) | 0.0 ± 0.0 (n=4)† |" in text  # 0 of 4 against 3 of 4: p < 0.05


def test_marker_where_the_paired_bootstrap_finds_a_difference_to_the_baseline(tmp_path):
    questions = 60
    write_run(tmp_path / "none", "none", controlled_records([0] * questions, [1] * questions))
    write_run(tmp_path / "prepend", "prepend", controlled_records([1] * 50 + [0] * 10, [1] * questions))
    write_run(tmp_path / "noisy", "noisy", controlled_records([1] + [0] * 59, [1] * questions))  # 1 of 60 apart
    board = build_leaderboard([tmp_path], resamples=500, seed=1)
    tab = table(board, "Table 2")
    prepend, noisy, none = cells(tab, "prepend"), cells(tab, "noisy"), cells(tab, "none")
    assert prepend[f"{TASK}:efficacy"].p < 0.01 and prepend[f"{TASK}:efficacy"].diff == pytest.approx(50 / 60)
    assert noisy[f"{TASK}:efficacy"].p > 0.3
    assert prepend[f"{TASK}:specificity"].p == 1.0  # identical scores
    assert none[f"{TASK}:efficacy"].p is None  # the baseline is not tested against itself
    text = markdown(board)
    assert "| prepend | **83.3 ± 4.9** (n=60)† |" in text
    assert "| noisy | <u>1.7 ± 1.7</u> (n=60) |" in text
    assert text.count("†") == 2  # the one significant cell, and the legend


def test_hf_runs_are_the_model_with_editor_none_and_other_models_get_their_own_tables(tmp_path):
    hf = {"model": "hf", "model_args": "pretrained=org/tiny-qa,dtype=float32"}
    write_run(tmp_path / "hf", "ignored", controlled_records([0, 0], [1, 1]), config=hf)
    write_run(tmp_path / "prepend", "prepend", controlled_records([1, 1], [1, 0]), model="org/tiny-qa")
    write_run(tmp_path / "other", "prepend", controlled_records([0, 1, 1], [1, 1, 1]), model="other")
    board = build_leaderboard([tmp_path], resamples=100)
    ours = table(board, "Table 2", model="org/tiny-qa")
    assert [row.editor for row in ours.rows] == ["none", "prepend"]
    assert cells(ours, "prepend")[f"{TASK}:efficacy"].p is not None  # tested against the hf run
    other = table(board, "Table 2", model="other")
    assert [row.editor for row in other.rows] == ["prepend"] and cells(other, "prepend")[f"{TASK}:efficacy"].n == 3


def test_runs_of_different_documents_or_limits_are_refused_naming_both(tmp_path):
    write_run(tmp_path / "none", "none", controlled_records([1, 0, 0, 0], [1, 1, 1, 0]))
    write_run(tmp_path / "short", "prepend", controlled_records([1, 1], [1, 1]))
    with pytest.raises(
        ValueError,
        match=r"(?s)task controlled_ripple_id, model tiny: .*4 samples only in .*none.*"
        r"\(editor none\)",
    ):
        build_leaderboard([tmp_path], resamples=100)
    changed = controlled_records([1, 1, 1, 0], [1, 1, 0, 0])
    changed[0]["doc_hash"] = "another document"
    write_run(tmp_path / "short", "prepend", changed)
    with pytest.raises(ValueError, match="1 samples whose documents differ"):
        build_leaderboard([tmp_path], resamples=100)
    write_run(tmp_path / "short", "prepend", controlled_records([1, 1, 1, 0], [1, 1, 0, 0]), limit=4)
    with pytest.raises(ValueError, match=r"ran with --limit None, .*prepend\) with --limit 4"):
        build_leaderboard([tmp_path], resamples=100)
    write_run(tmp_path / "short", "none", controlled_records([1, 1, 1, 0], [1, 1, 0, 0]))
    with pytest.raises(ValueError, match="editor none ran twice"):
        build_leaderboard([tmp_path], resamples=100)
    # a variant of the editor (changed settings) is a row of its own
    variant = {
        "model": "editing",
        "model_args": {"model": "tiny", "editor": "none", "editor.lr": 1e-5},
        "ripplebench": {"model": "tiny", "editor": "none"},
    }
    write_run(tmp_path / "short", "none", controlled_records([1, 1, 1, 0], [1, 1, 0, 0]), config=variant)
    assert [row.editor for row in build_leaderboard([tmp_path], resamples=100).tables[0].rows] == [
        "none",
        "none (editor.lr=1e-05)",
    ]
    # the same run named twice, by its folder and by its results file, is one run
    (tmp_path / "short" / f"results_{STAMP}.json").unlink()
    (tmp_path / "short" / f"samples_{TASK}_{STAMP}.jsonl").unlink()
    assert len(build_leaderboard([tmp_path, tmp_path / "none" / f"results_{STAMP}.json"]).runs) == 1


def ripple_records(values: dict[tuple[str, bool], list[float]], llm: bool = False) -> list[dict]:
    """RippleEdit samples: each reports its category, category_stratum and type (and llm_ twins)."""
    records = []
    for (category, verbatim), scores in values.items():
        for value in scores:
            doc = {
                "edit_id": f"e{len(records)}",
                "category": category,
                "verbatim": verbatim,
                "type": "LG" if category == "efficacy" else "RS",
                "question": "Q?",
                "answers": ["A"],
            }
            metrics = ripple_edit.process_results(doc, ["A" if value else "no"])  # the task's own scoring
            if llm:  # as the judge's JudgeFilter adds them, here half the exact match
                metrics.update({f"llm_{name}": value / 2 for name in list(metrics)})
            records.append(
                {
                    "doc_id": len(records),
                    "doc": doc,
                    "filter": "none",
                    "metrics": list(metrics),
                    "doc_hash": f"h{len(records)}",
                    **metrics,
                }
            )
    return records


def test_rippleedit_table_splits_verbatim_and_has_an_llm_score_twin(tmp_path):
    values = {
        ("efficacy", True): [1, 1],
        ("efficacy", False): [0, 1, 0],
        ("specificity", True): [1],
        ("specificity", False): [0, 0],
    }
    write_run(tmp_path / "none", "none", ripple_records(values, llm=True), task="ripple_edit")
    board = build_leaderboard([tmp_path], resamples=100)
    em, llm = (table(board, f"Table 1 · RippleEdit (ripple_edit) · {scorer}") for scorer in ("EM", "LLM-Score"))
    assert [c.label for c in em.columns] == [
        "Effi. Verbatim",
        "Effi. Non-verbatim",
        "Spec. Verbatim",
        "Spec. Non-verbatim",
    ]
    got = cells(em, "none")
    assert (got["ripple_edit:efficacy_nonverbatim"].mean, got["ripple_edit:efficacy_nonverbatim"].n) == (1 / 3, 3)
    assert got["ripple_edit:specificity_verbatim"].stderr is None  # one sample: no standard error
    assert cells(llm, "none")["ripple_edit:llm_efficacy_verbatim"].mean == 0.5
    assert {(s["stratum"], s["mean"], s["n"]) for s in board.strata} == {("LG", 0.6, 5)}  # efficacy per type


def test_multi_edit_runs_make_table_3_beside_the_single_edit_run(tmp_path):
    write_run(tmp_path / "single", "cpt", controlled_records([1, 1], [1, 1]))
    write_run(tmp_path / "m10", "cpt", controlled_records([1, 0], [1, 1]), task="controlled_ripple_id_multi10")
    write_run(tmp_path / "m20", "cpt", controlled_records([0, 0], [1, 0]), task="controlled_ripple_id_multi20")
    board = build_leaderboard([tmp_path], resamples=100, train=tmp_path / "absent.jsonl")
    multi = table(board, "Table 3 · Controlled RippleEdit, multi-edit, In-Domain")
    assert [(c.group, c.label) for c in multi.columns] == [
        ("single", "Effi."),
        ("single", "Spec."),
        ("10 edits", "Effi."),
        ("10 edits", "Spec."),
        ("20 edits", "Effi."),
        ("20 edits", "Spec."),
    ]
    assert [cell.mean for cell in multi.rows[0].cells] == [1.0, 1.0, 0.5, 1.0, 0.0, 0.5]
    assert "no none run of controlled_ripple_id, controlled_ripple_id_multi10" in multi.caption


def test_efficiency_table_oracle_flag_and_answer_prior_share(tmp_path):
    train = tmp_path / "train.jsonl"
    questions = [{"alias_question": "a?", "unalias_question": "u?", "relation_id": "r", "answer": "A"}]
    train.write_text(json.dumps({"text": "A fact.", "questions": questions * 3}) + "\n")
    records = controlled_records([1, 1, 0, 1], [1, 1, 1, 1], relations=["r"] * 4, answers=["A", "B", "A", "A"])
    write_run(
        tmp_path / "runs" / "aug",
        "meta_aug_cpt",
        records,
        stats={"edit_groups": 2, "oracle": True, "edit_seconds_mean": 3.0, "tokens_vs_cpt_mean": 7.0},
    )
    write_run(
        tmp_path / "runs" / "none",
        "none",
        controlled_records([0] * 4, [1] * 4, relations=["r"] * 4),
        stats={"edit_groups": 2, "edit_seconds_mean": 0.0},
    )
    board = build_leaderboard([tmp_path / "runs"], resamples=100, train=train)
    tab = table(board, "Table 2")
    # 3 correct efficacy answers, 2 of them the relation's majority answer "A"
    share = cells(tab, "meta_aug_cpt")[f"{TASK}:majority_answer_share"]
    assert (share.mean, share.n, share.rank) == (2 / 3, 3, None)
    assert cells(tab, "none")[f"{TASK}:majority_answer_share"] is None  # no correct answer to explain
    efficiency = table(board, "Efficiency · Table 2")
    aug = cells(efficiency, "meta_aug_cpt")
    assert (aug[":edit_seconds_mean"].mean, aug[":tokens_vs_cpt_mean"].mean, aug[":peak_rss_mb"].mean) == (
        3.0,
        7.0,
        512.0,
    )
    assert next(r for r in efficiency.rows if r.editor == "meta_aug_cpt").oracle
    text = markdown(board)
    assert "| meta_aug_cpt (oracle) | **75.0 ± 25.0** (n=4)† | **100.0 ± 0.0** (n=4) | 67% (n=3) |" in text
    assert "| meta_aug_cpt (oracle) | 3.00 | " in text and "| 7× | 512 |" in text


def test_command_writes_every_format_and_a_page_that_needs_no_network(tmp_path, capsys):
    write_run(tmp_path / "none", "none", controlled_records([0] * 20, [1] * 20))
    write_run(
        tmp_path / "prepend",
        "prepend",
        controlled_records([1] * 20, [1] * 19 + [0]),
        stats={"edit_groups": 10, "oracle": True},
    )
    out = tmp_path / "board"
    (out / "plots" / "gone").mkdir(parents=True)
    (out / "plots" / "gone" / "old_scatter.png").write_bytes(b"a plot of a run no longer given")
    assert (
        main(
            ["leaderboard", str(tmp_path / "none"), str(tmp_path / "prepend"), "--out", str(out), "--resamples", "200"]
        )
        == 0
    )
    assert "wrote" in capsys.readouterr().out
    assert not (out / "plots" / "gone" / "old_scatter.png").exists()
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    efficacy = next(r for r in rows if r["editor"] == "prepend" and r["metric"] == "efficacy")
    assert (float(efficacy["mean"]), efficacy["n"], efficacy["rank"]) == (1.0, "20", "1")
    assert float(efficacy["p_vs_baseline"]) < 0.05
    data = json.loads((out / "leaderboard.json").read_text())
    assert {t["title"] for t in data["tables"]} >= {"Table 2 · Controlled RippleEdit, single edit · EM"}
    page = (out / "index.html").read_text()
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", page, re.IGNORECASE)
    assert "<script" not in page and "<link" not in page
    sources = re.findall(r'src="([^"]*)"', page)
    pngs = sorted((out / "plots").rglob("*.png"))
    assert len(sources) == len(pngs) == 3  # scatter, bars, per-relation heatmap
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert {base64.b64decode(s.split(",", 1)[1]) for s in sources} == {p.read_bytes() for p in pngs}
    assert re.search(r'<td class="rank1" title="vs none: \+100\.0 points, p = 0\.00\d+ \(paired bootstrap\)">', page)
    assert '<tr class="oracle"><td class="editor">prepend (oracle)</td>' in page
    assert '<td class="rank2"><span class="value">0.0 ± 0.0</span> <span class="n">n=20</span></td>' in page


def test_runs_without_results_file_or_editor_are_refused(tmp_path):
    write_run(tmp_path / "run", "none", controlled_records([1], [1]))
    (tmp_path / "run" / f"results_{STAMP}.json").unlink()
    with pytest.raises(SystemExit, match="has no results_.*json beside it"):
        main(["leaderboard", str(tmp_path / "run"), "--out", str(tmp_path / "out")])
    write_run(tmp_path / "run", "none", controlled_records([1], [1]), config={"model": "vllm"})
    with pytest.raises(SystemExit, match="config names no ripplebench model and editor"):
        main(["leaderboard", str(tmp_path / "run"), "--out", str(tmp_path / "out")])


@pytest.mark.slow  # two lm_eval processes on the tiny model: about 2 minutes on 2 shared cores
@requires_controlled_ripple_splits
def test_real_lm_eval_runs_of_hf_and_editing_share_one_table(tiny_model_dir, tmp_path):
    common = ["--tasks", TASK, "--limit", "4", "--log_samples", "--batch_size", "4"]
    for name, args in (
        ("hf", ["--model", "hf", "--model_args", f"pretrained={tiny_model_dir}"]),
        ("prepend", ["--model", "editing", "--model_args", f"model={tiny_model_dir},editor=prepend"]),
    ):
        (tmp_path / name).mkdir()
        run_lm_eval(tmp_path / name, *args, *common)
    out = tmp_path / "board"
    assert (
        main(["leaderboard", str(tmp_path / "hf"), str(tmp_path / "prepend"), "--out", str(out), "--resamples", "100"])
        == 0
    )
    tables = json.loads((out / "leaderboard.json").read_text())["tables"]
    single = next(t for t in tables if t["title"].startswith("Table 2"))
    assert single["model"] == str(tiny_model_dir) and [row["editor"] for row in single["rows"]] == ["none", "prepend"]
    assert [cell["n"] for cell in single["rows"][1]["cells"][:2]] == [2, 2]  # 4 documents: 2 questions x 2 kinds
