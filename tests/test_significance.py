"""Paired bootstrap on synthetic data with known answers, and `ripplebench compare` on lm-eval logs."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from ripplebench.core.io import read_jsonl, write_jsonl
from ripplebench.harness.cli import main
from ripplebench.harness.runs import find_runs
from ripplebench.harness.significance import compare_runs, paired_bootstrap

TASK = "controlled_ripple_id"


def test_identical_runs_give_p_one_and_a_zero_interval():
    scores = [1, 0, 1, 1, 0, 0.7, 0.2] * 20
    result = paired_bootstrap(scores, scores, resamples=2000)
    assert result.p == 1.0
    assert (result.diff, result.low, result.high) == (0.0, 0.0, 0.0)


def test_a_large_consistent_difference_is_significant():
    rng = random.Random(1)
    b = [float(rng.random() < 0.3) for _ in range(200)]
    a = [max(x, float(rng.random() < 0.8)) for x in b]  # A is right wherever B is, and more often
    result = paired_bootstrap(a, b, resamples=5000, seed=3)
    assert result.p < 0.05
    assert 0 < result.low <= result.diff <= result.high
    assert result.diff == pytest.approx(sum(a) / 200 - sum(b) / 200)


def test_a_difference_small_against_the_noise_is_not_significant():
    a = [1.0] * 51 + [0.0] * 49
    b = [0.0] * 51 + [1.0] * 49  # mean difference 0.02, standard error about 0.1
    result = paired_bootstrap(a, b, resamples=5000)
    assert result.p > 0.5
    assert result.low < 0 < result.high


def test_the_seed_makes_the_test_reproducible():
    a, b = [1, 0, 1, 1, 0, 1] * 10, [0, 0, 1, 0, 1, 1] * 10
    assert paired_bootstrap(a, b, 3000, seed=7) == paired_bootstrap(a, b, 3000, seed=7)
    assert paired_bootstrap(a, b, 3000, seed=7) != paired_bootstrap(a, b, 3000, seed=8)


def test_unpaired_lists_are_refused():
    with pytest.raises(ValueError, match="equally long, non-empty lists; got 3 and 2"):
        paired_bootstrap([1, 0, 1], [1, 0])


def write_run(
    folder: Path,
    efficacy: list[float],
    stamp: str = "2026-01-01T00-00-00.000001",
    shuffle: bool = False,
    llm: list[float] | None = None,
) -> Path:
    """A run in lm-eval's --log_samples layout: efficacy and specificity samples of 2 questions per edit."""
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for number, value in enumerate(efficacy):
        for kind in ("efficacy", "specificity"):
            doc = {
                "edit_id": f"e{number // 2}",
                "question_id": number % 2,
                "kind": kind,
                "question": f"Q{number}?",
                "answers": ["A"],
            }
            record = {
                "doc_id": len(records),
                "doc": doc,
                "filtered_resps": ["A"],
                "filter": "none",
                "metrics": [kind],
                "doc_hash": f"h{number}{kind}",
                kind: value if kind == "efficacy" else 1.0,
            }
            if llm is not None and kind == "efficacy" and llm[number] is not None:
                record["metrics"].append("llm_efficacy")
                record["llm_efficacy"] = llm[number]
            records.append(record)
    if shuffle:
        random.Random(0).shuffle(records)
        for doc_id, record in enumerate(records):
            record["doc_id"] = doc_id
    (folder / f"samples_{TASK}_{stamp}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    results = folder / f"results_{stamp}.json"
    results.write_text(json.dumps({"results": {TASK: {"alias": TASK}}, "versions": {TASK: 1}, "n-shot": {TASK: 0}}))
    return results


def test_compare_pairs_by_edit_and_question_not_by_position(tmp_path):
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    write_run(tmp_path / "a", values)
    write_run(tmp_path / "b", values, shuffle=True)
    rows = {row.metric: row for row in compare_runs(tmp_path / "a", tmp_path / "b", resamples=500)}
    assert set(rows) == {"efficacy", "specificity"}
    assert rows["efficacy"].result.n == 6 and rows["efficacy"].result.p == 1.0


def test_compare_reports_each_metric_with_difference_interval_and_p(tmp_path, capsys):
    write_run(tmp_path / "a", [1.0] * 40, llm=[0.9] * 39 + [None])
    write_run(tmp_path / "b", [0.0] * 30 + [1.0] * 10, llm=[0.2] * 40)
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--resamples", "1000", "--seed", "1"]) == 0
    table = capsys.readouterr().out
    efficacy = next(line for line in table.splitlines() if "|efficacy|" in line)
    assert "|40|1.0000|0.2500|+0.7500|" in efficacy and efficacy.endswith("|*||")
    llm = next(line for line in table.splitlines() if "|llm_efficacy|" in line)
    assert "|39|0.9000|0.2000|+0.7000|" in llm and "1 unpaired (unscorable in A: 1, in B: 0)" in llm
    assert "|specificity|40|1.0000|1.0000|+0.0000|[+0.0000, +0.0000]|1.0000|" in table


def test_runs_with_different_samples_are_refused_naming_them(tmp_path, capsys):
    write_run(tmp_path / "a", [1.0] * 6)
    write_run(tmp_path / "b", [1.0] * 4)
    with pytest.raises(
        SystemExit, match=r"4 samples only in RUN_A: \('controlled_ripple_id', 'none', 'e2', 0, 'efficacy'\)"
    ):
        main(["compare", str(tmp_path / "a"), str(tmp_path / "b")])


def test_a_folder_with_two_runs_must_be_told_apart(tmp_path):
    write_run(tmp_path / "a", [1.0] * 2)
    second = write_run(tmp_path / "a", [0.0] * 2, stamp="2026-01-02T00-00-00.000001")
    with pytest.raises(SystemExit, match=r"holds 2 runs; pass one results file"):
        main(["compare", str(tmp_path / "a"), str(second)])
    assert main(["compare", str(second), str(second)]) == 0


def test_a_gzipped_sample_log_is_read_like_the_plain_one(tmp_path):
    results = write_run(tmp_path / "plain", [1.0, 0.0, 1.0, 0.0])
    packed = tmp_path / "packed"
    packed.mkdir()
    (packed / results.name).write_text(results.read_text())
    [log] = (tmp_path / "plain").glob("samples_*.jsonl")
    write_jsonl(packed / f"{log.name}.gz", read_jsonl(log))
    assert gzip.decompress((packed / f"{log.name}.gz").read_bytes()) == log.read_bytes()
    [run] = find_runs(packed)
    assert list(run.samples) == [TASK] and run.results == packed / results.name
    rows = {row.metric: row.result for row in compare_runs(tmp_path / "plain", packed, resamples=100)}
    assert rows["efficacy"].n == 4 and rows["efficacy"].diff == 0.0
