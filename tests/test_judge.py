"""The LLM judge against a real HTTP server on 127.0.0.1, and LLM-Score inside lm-eval."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from judge_server import FakeJudge

from ripplebench.harness.cli import main
from ripplebench.harness.judge import DEFAULT_TEMPLATE, Judge, JudgeError, JudgeItem, JudgeSettings, parse_score

ITEMS = [
    JudgeItem("What is the capital of Malaysia?", ("Kuala Lumpur",), "Kuala Lumpur."),
    JudgeItem("What is the currency of Kenya?", ("Kenyan shilling", "KES"), "It is the KES"),
    JudgeItem("What is the calling code for Japan?", ("+81",), "I do not know"),
]


def settings(server: FakeJudge | None, tmp_path: Path, **changes) -> JudgeSettings:
    """Fast test settings: short timeout and backoff, a private cache."""
    base_url = server.base_url if server else "http://127.0.0.1:9/v1"
    values = dict(
        model="fake-judge", base_url=base_url, timeout=1.0, retries=2, backoff=0.01, cache_dir=tmp_path / "cache"
    )
    return JudgeSettings(**{**values, **changes})


def score(server: FakeJudge | None, tmp_path: Path, items=ITEMS, **changes):
    judge = Judge(settings(server, tmp_path, **changes))
    try:
        return judge.score(items, progress=False)
    finally:
        judge.close()


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("<score>7</score>", 0.7),
        ("The answer matches. <score> 10 </score>", 1.0),
        ("<SCORE>2.5</SCORE>", 0.25),
        ("<think>maybe <score>3</score></think><score>9</score>", 0.9),
        ("<score>8</score> ... so <score>8</score>", 0.8),
        ("<score>3</score> no, <score>8</score>", None),
        ("<score>11</score>", None),
        ("Score: 7", None),
        ("", None),
    ],
)
def test_parse_score_reads_the_score_tag_and_divides_by_ten(reply, expected):
    assert parse_score(reply) == expected


def _paper_prompt() -> str | None:
    """Appendix A.1 from the shared paper text, if the checkout has it."""
    repo = Path(__file__).resolve().parent.parent
    for folder in (repo / "shared", repo.parent / "shared", Path("/work/shared")):
        paper = folder / "papers" / "propmend_paper.txt"
        if paper.is_file():
            text = paper.read_text(encoding="utf-8")
            return text.split("#### A.1 LLM-as-Judge prompt", 1)[1].split("```")[1]
    return None


def test_default_template_is_the_papers_appendix_a1_prompt(tmp_path):
    prompt = Judge(settings(None, tmp_path)).prompt("{question}", "{reference}", "{prediction}")
    paper = _paper_prompt()
    if paper is None:
        pytest.skip("shared/papers/propmend_paper.txt is not available")
    # The paper's PDF wraps lines at its column width; the words and their order must agree.
    assert prompt.split() == paper.split()
    assert prompt.startswith("[Instruction]\n") and "\n[Question]\n{question}\n" in prompt


def test_own_template_is_used_and_changes_the_cache_key(tmp_path):
    template = tmp_path / "mine.jinja"
    template.write_text("Q={{ question }} R={{ reference }} P={{ prediction }}")
    with FakeJudge() as server:
        server.reply = lambda prompt: "<score>4</score>"
        scores, _ = score(server, tmp_path, ITEMS[:1], template=template)
        assert server.prompts == ["Q=What is the capital of Malaysia? R=Kuala Lumpur P=Kuala Lumpur."]
        score(server, tmp_path, ITEMS[:1])  # the default template: not a cache hit
        assert server.requests == 2
    assert scores == [0.4]


def test_scores_are_normalised_and_the_best_answer_counts(tmp_path):
    with FakeJudge() as server:
        scores, report = score(server, tmp_path)
    # "KES" matches (10) while "Kenyan shilling" does not (2): the best answer counts.
    assert scores == [1.0, 1.0, 0.2]
    assert (report.items, report.judgements, report.requests, report.cached) == (3, 4, 4, 0)
    assert report.unscorable == []


def test_rerun_is_answered_from_the_cache_with_zero_requests(tmp_path):
    with FakeJudge() as server:
        first, _ = score(server, tmp_path)
        before = server.requests
        second, report = score(server, tmp_path)
        assert server.requests == before == 4
    assert second == first and report.cached == 4 and report.requests == 0


def test_rate_limits_and_server_errors_are_retried(tmp_path):
    with FakeJudge() as server:
        server.failures = [429, 500, 503]
        scores, report = score(server, tmp_path, ITEMS[:1], retries=3)
        assert server.requests == 4
    assert scores == [1.0] and report.requests == 4


def test_persistent_failure_stops_with_an_error_naming_the_url(tmp_path):
    with FakeJudge() as server:
        server.failures = [500] * 10
        with pytest.raises(JudgeError, match=re.escape(server.base_url) + ".*after 3 tries"):
            score(server, tmp_path, ITEMS[:1], retries=2)
        assert server.requests == 3


def test_client_errors_other_than_429_are_not_retried(tmp_path):
    with FakeJudge() as server:
        server.failures = [404]
        with pytest.raises(JudgeError, match=r"refused the request \(HTTP 404, model 'fake-judge'\)"):
            score(server, tmp_path, ITEMS[:1])
        assert server.requests == 1


def test_a_stalled_request_times_out_and_is_retried(tmp_path):
    with FakeJudge() as server:
        server.stalls, server.stall_seconds = 1, 2.0
        scores, report = score(server, tmp_path, ITEMS[:1], timeout=0.3)
    assert scores == [1.0] and report.requests == 2


def test_a_judge_that_always_stalls_is_reported_as_timing_out(tmp_path):
    with FakeJudge() as server:
        server.stalls, server.stall_seconds = 10, 1.0
        with pytest.raises(JudgeError, match=r"did not answer within 0.2 s after 2 tries"):
            score(server, tmp_path, ITEMS[:1], timeout=0.2, retries=1)


def test_unreachable_judge_stops_with_an_error_naming_the_url(tmp_path):
    with FakeJudge() as server:
        url = server.base_url
    with pytest.raises(JudgeError, match=re.escape(f"The judge at {url} cannot be reached after 2 tries")):
        score(None, tmp_path, ITEMS[:1], base_url=url, retries=1)


def test_garbage_is_reasked_then_counted_as_unscorable_never_zero(tmp_path):
    with FakeJudge() as server:
        server.garbage = 1  # one bad reply, then a good one: re-asked and scored
        scores, report = score(server, tmp_path, ITEMS[:1])
        assert scores == [1.0] and server.requests == 2
        server.garbage = -1  # never a score: 1 + reasks requests, then unscorable
        scores, report = score(server, tmp_path, ITEMS[2:], reasks=2)
        assert server.requests == 2 + 3
    assert scores == [None]
    assert report.unscorable == [ITEMS[2]]


def test_an_unscorable_answer_makes_the_item_unscorable_unless_another_scores_ten(tmp_path):
    with FakeJudge() as server:
        server.reply = lambda prompt: "no score" if "Kenyan shilling" in prompt else FakeJudge.reply(server, prompt)
        items = [ITEMS[1], JudgeItem(ITEMS[1].question, ITEMS[1].answers, "a shilling")]
        scores, report = score(server, tmp_path, items, reasks=0)
    # "It is the KES" scores 10 on KES; "a shilling" scores 2 on KES, unknown on the other answer.
    assert scores == [1.0, None] and len(report.unscorable) == 1


def test_unscorable_judgements_are_cached_but_can_be_retried(tmp_path):
    with FakeJudge() as server:
        server.garbage = -1
        score(server, tmp_path, ITEMS[:1], reasks=0)
        score(server, tmp_path, ITEMS[:1], reasks=0)
        assert server.requests == 1
        server.garbage = 0
        judge = Judge(settings(server, tmp_path))
        scores, _ = judge.score(ITEMS[:1], retry_unscorable=True, progress=False)
        judge.close()
        assert scores == [1.0] and server.requests == 2


def test_judging_works_from_code_that_already_runs_an_event_loop(tmp_path):
    import asyncio

    async def inside_a_loop():
        return score(server, tmp_path, ITEMS[:1])

    with FakeJudge() as server:
        scores, report = asyncio.run(inside_a_loop())
    assert scores == [1.0] and report.requests == 1


def test_concurrency_is_bounded_and_used(tmp_path):
    items = [JudgeItem(f"Question {n}?", ("yes",), "yes") for n in range(24)]
    with FakeJudge(delay=0.1) as server:
        score(server, tmp_path, items, concurrency=4)
        assert server.requests == 24
        assert server.max_in_flight == 4


def test_settings_come_from_metadata_over_environment():
    environ = {"RIPPLEBENCH_JUDGE_MODEL": "env-model", "RIPPLEBENCH_JUDGE_CONCURRENCY": "3", "OPENAI_API_KEY": "sk-x"}
    resolved = JudgeSettings.resolve({"judge_model": "meta-model", "judge_timeout": "5", "version": 1}, environ)
    assert (resolved.model, resolved.concurrency, resolved.timeout, resolved.api_key) == ("meta-model", 3, 5.0, "sk-x")
    assert resolved.temperature == 0.0 and resolved.template == DEFAULT_TEMPLATE
    assert JudgeSettings.resolve({}, {"OPENAI_API_KEY": "sk-x"}) is None


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"judge_modle": "x"}, r"Unknown judge setting\(s\) judge_modle in task metadata. Valid: judge_model, "),
        ({"judge_model": "x", "judge_concurrency": "many"}, r"'concurrency' must be int, got 'many'"),
        ({"judge_model": "x", "judge_concurrency": 0}, r"'concurrency' must be at least 1, got 0"),
    ],
)
def test_bad_settings_are_named(metadata, message):
    with pytest.raises(ValueError, match=message):
        JudgeSettings.resolve(metadata, {})


def test_openai_without_an_api_key_is_refused_before_any_request(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ValueError, match=r"needs an API key: set RIPPLEBENCH_JUDGE_API_KEY or OPENAI_API_KEY"):
        Judge(JudgeSettings(model="gpt-4o-mini", cache_dir=tmp_path))


LM_EVAL = Path(sys.executable).parent / "lm_eval"


def run_lm_eval(tmp_path: Path, model_dir: Path, output: Path, judge_env: dict[str, str]) -> tuple[str, dict]:
    """The real lm_eval executable on a few documents; returns its log and results file."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RIPPLEBENCH_JUDGE_")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", **judge_env)
    process = subprocess.run(
        [
            str(LM_EVAL),
            "--model",
            "editing",
            "--model_args",
            f"model={model_dir},editor=prepend",
            "--tasks",
            "controlled_ripple_ood_entity",
            "--limit",
            "4",
            "--batch_size",
            "4",
            "--output_path",
            str(output),
            "--log_samples",
            "--device",
            "cpu",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    results = max(output.rglob("results_*.json"))
    return process.stdout + process.stderr, json.loads(results.read_text())


def judge_env(server: FakeJudge, cache: Path) -> dict[str, str]:
    return {
        "RIPPLEBENCH_JUDGE_MODEL": "fake-judge",
        "RIPPLEBENCH_JUDGE_BASE_URL": server.base_url,
        "RIPPLEBENCH_JUDGE_CACHE_DIR": str(cache),
        "RIPPLEBENCH_JUDGE_BACKOFF": "0.01",
    }


def test_lm_eval_reports_llm_score_with_stderr_and_a_rerun_makes_no_requests(tiny_model_dir, tmp_path):
    with FakeJudge() as server:
        env = judge_env(server, tmp_path / "cache")
        log, results = run_lm_eval(tmp_path, tiny_model_dir, tmp_path / "first", env)
        requests = server.requests
        assert requests > 0
        rerun_log, rerun = run_lm_eval(tmp_path, tiny_model_dir, tmp_path / "second", env)
        assert server.requests == requests
    metrics = results["results"]["controlled_ripple_ood_entity"]
    for name in ("llm_efficacy", "llm_specificity", "efficacy", "specificity"):
        assert 0.0 <= metrics[f"{name},none"] <= 1.0 and isinstance(metrics[f"{name}_stderr,none"], float)
    assert re.search(r"\|\s*llm_efficacy\s*\|", log) and "LLM-Score was not computed" not in log
    assert rerun["results"]["controlled_ripple_ood_entity"] == metrics
    assert f"({requests} from cache, 0 requests)" in rerun_log


def test_without_a_judge_lm_eval_reports_exact_match_then_ripplebench_judge_scores_the_logs(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    log, results = run_lm_eval(tmp_path, tiny_model_dir, tmp_path / "out", {})
    assert "LLM-Score was not computed: no judge is configured" in log
    assert not any(key.startswith("llm_") for key in results["results"]["controlled_ripple_ood_entity"])
    with FakeJudge() as server:
        for key, value in judge_env(server, tmp_path / "cache").items():
            monkeypatch.setenv(key, value)
        assert main(["judge", str(tmp_path / "out")]) == 0
        requests = server.requests
        assert requests > 0
        assert main(["judge", str(tmp_path / "out")]) == 0  # resumes from the cache
        assert server.requests == requests
    printed = capsys.readouterr().out
    assert re.search(r"\|\s*llm_specificity\s*\|", printed) and "0 requests), 0 unscorable" in printed
    metrics = json.loads(max((tmp_path / "out").rglob("results_*.json")).read_text())["results"][
        "controlled_ripple_ood_entity"
    ]
    assert isinstance(metrics["llm_efficacy_stderr,none"], float)
    samples = [json.loads(line) for line in max((tmp_path / "out").rglob("samples_*.jsonl")).read_text().splitlines()]
    for sample in samples:
        kind = sample["doc"]["kind"]
        assert sample["metrics"] == [kind, f"llm_{kind}"] and sample[f"llm_{kind}"] in (0.2, 1.0)


DOCS = [
    {"kind": "efficacy", "question": "What is the capital of Malaysia?", "answers": ["Kuala Lumpur"]},
    {"kind": "specificity", "question": "What is the calling code for Japan?", "answers": ["+81"]},
]


def use_judge(monkeypatch, server: FakeJudge | None, cache: Path, url: str | None = None) -> None:
    for key, value in {
        "MODEL": "fake-judge",
        "BASE_URL": url or server.base_url,
        "CACHE_DIR": str(cache),
        "RETRIES": "1",
        "BACKOFF": "0.01",
        "REASKS": "0",
    }.items():
        monkeypatch.setenv(f"RIPPLEBENCH_JUDGE_{key}", value)


def test_filter_scores_answers_and_process_results_reports_llm_metrics(monkeypatch, tmp_path):
    from ripplebench.tasks.controlled_ripple.utils import JudgeFilter, process_results

    with FakeJudge() as server:
        use_judge(monkeypatch, server, tmp_path)
        server.reply = lambda prompt: "no score" if "+81" in prompt else FakeJudge.reply(server, prompt)
        answers = JudgeFilter().apply(iter(["Kuala Lumpur", "+81"]), DOCS)
    assert answers == ["Kuala Lumpur", "+81"]  # the text itself is unchanged
    assert process_results(DOCS[0], [answers[0]]) == {"efficacy": 1.0, "llm_efficacy": 1.0}
    # Unscorable: left out of llm_specificity (and counted in the log), never reported as 0.
    assert process_results(DOCS[1], [answers[1]]) == {"specificity": 1.0}


def test_filter_without_a_judge_passes_answers_through(monkeypatch, caplog):
    from ripplebench.tasks.controlled_ripple.utils import JudgeFilter, process_results

    monkeypatch.delenv("RIPPLEBENCH_JUDGE_MODEL", raising=False)
    monkeypatch.setattr(logging.getLogger("lm_eval"), "propagate", True)  # lm_eval may have turned it off
    answers = JudgeFilter().apply(iter(["Kuala Lumpur"]), DOCS[:1])
    assert process_results(DOCS[0], answers) == {"efficacy": 1.0}
    assert "LLM-Score was not computed" in caplog.text


def test_unreachable_judge_in_lm_eval_keeps_the_answers_for_ripplebench_judge(monkeypatch, tmp_path, capsys):
    from ripplebench.tasks.controlled_ripple.utils import JudgeFilter

    with FakeJudge() as server:
        url = server.base_url  # closed when the block ends: nothing listens there any more
    use_judge(monkeypatch, None, tmp_path / "cache", url)
    with pytest.raises(JudgeError, match=re.escape(url) + r" cannot be reached .* saved in (\S+);") as error:
        JudgeFilter().apply(iter(["Kuala Lumpur", "81"]), DOCS)
    saved = re.search(r"saved in (\S+);", str(error.value)).group(1)
    monkeypatch.delenv("RIPPLEBENCH_JUDGE_MODEL")
    monkeypatch.delenv("RIPPLEBENCH_JUDGE_BASE_URL")
    with pytest.raises(SystemExit, match="No judge model: pass --model or set RIPPLEBENCH_JUDGE_MODEL"):
        main(["judge", saved])
    with FakeJudge() as server:
        assert main(["judge", saved, "--model", "fake-judge", "--base_url", server.base_url]) == 0
    records = [json.loads(line) for line in Path(saved).read_text().splitlines()]
    assert [record["llm_score"] for record in records] == [1.0, 0.2]
    assert "2 items, 2 judgements (0 from cache, 2 requests), 0 unscorable" in capsys.readouterr().out


def test_judge_settings_reach_the_task_through_lm_eval_metadata(monkeypatch, tmp_path):
    from ripplebench.harness.llm_score import judge_settings
    from ripplebench.tasks.controlled_ripple.utils import load_split

    monkeypatch.delenv("RIPPLEBENCH_JUDGE_MODEL", raising=False)
    load_split(
        "id",
        version=1.0,
        judge_model="meta-judge",
        judge_base_url="http://127.0.0.1:9/v1",
        judge_cache_dir=str(tmp_path),
    )
    assert (judge_settings().model, judge_settings().base_url) == ("meta-judge", "http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match=r"Unknown judge setting\(s\) judge_url"):
        load_split("id", judge_url="http://x")
    load_split("id")
    assert judge_settings() is None


def test_editing_model_accepts_judge_model_args_for_the_tasks(tiny_model_dir):
    from ripplebench.harness.lm_model import EditingLM

    EditingLM.create_from_arg_string(f"model={tiny_model_dir},judge_model=gpt-4o-mini,judge_concurrency=4")
