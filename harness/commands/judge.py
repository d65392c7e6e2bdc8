"""`ripplebench judge RESULTS`: score saved lm-eval sample logs with the LLM judge (LLM-Score)."""

from __future__ import annotations

import argparse
from typing import Any, Sequence


def judge_results(args: argparse.Namespace) -> int:
    """Score saved lm-eval sample logs with the LLM judge; update them and print the tables."""
    from ripplebench.harness.judge import ENV_PREFIX, JudgeSettings
    from ripplebench.harness.rescore import rescore

    given = {"model": args.model, "base_url": args.base_url, "concurrency": args.concurrency, "template": args.template}
    settings = JudgeSettings.resolve({f"judge_{name}": value for name, value in given.items() if value is not None})
    if settings is None:
        raise SystemExit(f"No judge model: pass --model or set {ENV_PREFIX}MODEL (see README, 'Scoring with a judge').")
    runs, report = rescore(args.results, settings, args.retry_unscorable, args.question_field, args.answers_field)
    print(f"Judge {settings.model} at {settings.endpoint}: {report.summary()}.")
    if report.unscorable:
        print(
            f"{len(report.unscorable)} answers had no parseable score and are left out of the llm_* metrics; "
            "--retry_unscorable asks again."
        )
    print_tables(runs)
    return 0


def print_tables(runs: Sequence[Any]) -> None:
    """lm-eval's table of each rescored run's results file (or a note where it has none)."""
    import json

    from lm_eval.utils import make_table

    for run in runs:
        if run.results is not None:
            print(f"\n{run.results}")
            print(make_table(json.loads(run.results.read_text(encoding="utf-8"))))
        else:
            print(f"\n{run.name}: scores written into the file (no results file to update).")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """The `judge` subcommand."""
    parser = subparsers.add_parser(
        "judge",
        help="score saved lm-eval sample logs (--log_samples) with the LLM judge (LLM-Score)",
        description="Judge every answer in lm-eval sample logs, write llm_* scores into them and their "
        "results file, and print the tables. Judgements already made are read from the cache. The judge "
        "is configured by RIPPLEBENCH_JUDGE_* environment variables; the options below override them.",
    )
    parser.add_argument("results", help="an lm-eval --output_path folder, a results_*.json or a samples_*.jsonl file")
    parser.add_argument("--model", help="judge model name (RIPPLEBENCH_JUDGE_MODEL)")
    parser.add_argument(
        "--base_url", help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (RIPPLEBENCH_JUDGE_BASE_URL)"
    )
    parser.add_argument("--concurrency", type=int, help="requests in flight at once (RIPPLEBENCH_JUDGE_CONCURRENCY)")
    parser.add_argument("--template", help="a jinja2 prompt template (RIPPLEBENCH_JUDGE_TEMPLATE)")
    parser.add_argument("--retry_unscorable", action="store_true", help="ask again where the cache holds no score")
    parser.add_argument("--question_field", default="question", help="document field with the question")
    parser.add_argument("--answers_field", default="answers", help="document field with the valid answers")
    parser.set_defaults(run=judge_results)
