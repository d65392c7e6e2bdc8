"""The `ripplebench` command line."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ripplebench.harness.data import add_commands as add_dataset_commands
from ripplebench.leaderboards.command import add_leaderboard_parser


def list_editors(_: argparse.Namespace) -> int:
    """Print every editor and preset that `editor=` accepts, with a one-line description and,
    where it has one, its state here (hypernetworks: trained here / not trained here)."""
    from ripplebench.editors.registry import available_editors, build_editor, describe

    entries = available_editors().values()
    width = max(len(entry.name) for entry in entries)
    for entry in entries:
        try:
            text = describe(entry)
            state = build_editor(entry.name).status()
        except Exception as error:  # a broken third-party editor must not hide the others
            text, state = f"(cannot be loaded: {error})", ""
        tags = f"[{entry.source}]" + (f" [{state}]" if state else "")
        print(f"{entry.name:<{width}}  {tags}  {text}")
    return 0


def list_models(_: argparse.Namespace) -> int:
    """Print the built-in model aliases."""
    from ripplebench.core.models import ALIASES

    for name, alias in ALIASES.items():
        print(f"{name}  {alias.description} (install: {alias.install})")
    return 0


def judge_results(args: argparse.Namespace) -> int:
    """Score saved lm-eval sample logs with the LLM judge; update them and print the tables."""
    from ripplebench.harness.judge import ENV_PREFIX, JudgeSettings
    from ripplebench.harness.llm_score import rescore

    given = {"model": args.model, "base_url": args.base_url, "concurrency": args.concurrency, "template": args.template}
    settings = JudgeSettings.resolve({f"judge_{name}": value for name, value in given.items() if value is not None})
    if settings is None:
        raise SystemExit(f"No judge model: pass --model or set {ENV_PREFIX}MODEL (see README, 'Scoring with a judge').")
    runs, report = rescore(args.results, settings, args.retry_unscorable, args.question_field, args.answers_field)
    print(f"Judge {settings.model} at {settings.endpoint}: {report.summary()}.")
    if report.unscorable:
        print(f"{len(report.unscorable)} answers had no parseable score and are left out of the llm_* metrics; "
              "--retry_unscorable asks again.")
    _print_tables(runs)
    return 0


def _print_tables(runs) -> None:
    import json

    from lm_eval.utils import make_table

    for run in runs:
        if run.results is not None:
            print(f"\n{run.results}")
            print(make_table(json.loads(run.results.read_text(encoding="utf-8"))))
        else:
            print(f"\n{run.name}: scores written into the file (no results file to update).")


def compare_runs(args: argparse.Namespace) -> int:
    """Paired bootstrap test of two lm-eval runs, per task, metric and stratum."""
    from ripplebench.harness.significance import compare_runs as compare, format_comparisons

    try:
        rows = compare(args.run_a, args.run_b, args.resamples, args.seed, args.alpha)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"ripplebench compare: {error}") from None
    print(f"RUN_A = {args.run_a}\nRUN_B = {args.run_b}")
    print(f"paired bootstrap, {args.resamples} resamples, seed {args.seed}; * = p < {args.alpha:g}")
    print(format_comparisons(rows, args.alpha))
    return 0


def sft_qa(args: argparse.Namespace) -> int:
    """Make a "-QA" model: two short-answer SFT stages (paper Table 23), then save it."""
    from pathlib import Path

    from ripplebench.core.models import load_model, resolve_model
    from ripplebench.core.prompts import resolve_prompt_format
    from ripplebench.harness.sft_qa import (
        CONTROLLED_RIPPLE_TRAIN,
        RIPPLE_QA_SETTINGS,
        TRIVIAQA_SETTINGS,
        override_settings,
        prepare_qa_model,
    )

    stage2 = Path(args.stage2 or CONTROLLED_RIPPLE_TRAIN)
    if not stage2.is_file():
        raise SystemExit(
            f"Stage-2 QA data '{stage2}' does not exist. The default is the Controlled RippleEdit "
            "training split; generate it, or pass --stage2 FILE.jsonl (question/answer records or "
            "Controlled RippleEdit instances)."
        )
    stage1_settings = override_settings(TRIVIAQA_SETTINGS, args.stage1_set)
    stage2_settings = override_settings(RIPPLE_QA_SETTINGS, args.stage2_set)
    loaded = load_model(resolve_model(args.model), device=args.device)
    prepare_qa_model(
        loaded,
        args.output,
        prompt_format=resolve_prompt_format(args.prompt_format, loaded.tokenizer),
        stage1=args.stage1,
        stage1_pairs=args.stage1_pairs,
        stage2=stage2,
        stage2_pairs=args.stage2_pairs,
        evaluation=args.eval,
        train_on_evaluation=args.train_on_eval,
        stage1_settings=stage1_settings,
        stage2_settings=stage2_settings,
        seed=args.seed,
    )
    return 0


def add_sft_qa_parser(commands) -> None:
    parser = commands.add_parser(
        "sft-qa",
        help="fine-tune a model to answer briefly (the paper's -QA models, Table 23)",
        description="Two SFT stages with the paper's Table 23 settings: (1) TriviaQA, (2) single-hop "
        "QA about the benchmark's entities; the result is a folder usable as model=...",
    )
    parser.add_argument("--model", default="smollm2-135m", help="base model: alias, folder or Hugging Face id")
    parser.add_argument("--output", required=True, help="folder to create for the fine-tuned model")
    parser.add_argument(
        "--stage1", default="triviaqa",
        help="'triviaqa' (through `datasets`; skipped with a note when offline), 'none', or a JSON-lines file",
    )
    parser.add_argument("--stage1-pairs", type=int, default=None, help="use at most this many stage-1 pairs")
    parser.add_argument(
        "--stage2", default=None,
        help="JSON-lines QA file or Controlled RippleEdit instances (default: its training split)",
    )
    parser.add_argument("--stage2-pairs", type=int, default=500, help="stage-2 pairs (paper: 500)")
    parser.add_argument(
        "--eval", default=None,
        help="QA file scored before and after training (exact match, answer length); kept out of training",
    )
    parser.add_argument(
        "--train-on-eval", action="store_true",
        help="let stage 2 draw --eval questions too (the paper's stage 2 reinforces the facts the benchmark "
        "asks about); the report counts how many were trained on",
    )
    for stage, table in (("stage1", "23 (a)"), ("stage2", "23 (b)")):
        parser.add_argument(
            f"--{stage}-set", action="append", default=[], metavar="FIELD=VALUE",
            help=f"change a {stage} training setting from its Table {table} value, e.g. lr=1e-5, "
            "epochs=3, batch_size, micro_batch_size (memory only), warmup_ratio; repeatable",
        )
    parser.add_argument("--prompt-format", default="auto", help="auto, chat, qa or raw (as --model editing)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(run=sft_qa)


def prepare_embedded(args: argparse.Namespace) -> int:
    """Build the embedded -QA model (alias smollm2-135m-qa) into the cache, or reuse it."""
    from ripplebench.harness.embedded_qa import EVAL_QUESTIONS, prepare_embedded as prepare

    questions = EVAL_QUESTIONS if args.eval_questions is None else args.eval_questions
    try:
        folder = prepare(eval_questions=questions, device=args.device)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"ripplebench prepare-embedded: {error}") from None
    print(f"smollm2-135m-qa: {folder} (model card: {folder / 'README.md'})")
    return 0


def add_prepare_embedded_parser(commands) -> None:
    parser = commands.add_parser(
        "prepare-embedded",
        help="build the embedded -QA model, alias smollm2-135m-qa (once; training took 28 min on 2 CPU cores)",
        description="Fine-tune smollm2-135m on every single-hop pair of the Controlled RippleEdit training "
        "split (the README's measured sft-qa recipe) into $RIPPLEBENCH_CACHE/models/smollm2-135m-qa, with "
        "a model card; reruns reuse the built model.",
    )
    parser.add_argument(
        "--eval-questions", type=int, default=None,
        help="score exact match before and after on the first N single-hop questions of the validation "
        "split (default 450: those of its first 100 instances; 0 skips it)",
    )
    parser.add_argument("--device", default="cpu")
    parser.set_defaults(run=prepare_embedded)


def parse_settings(items: Sequence[str]) -> dict:
    """`key=value` pairs, values parsed as YAML scalars (numbers, booleans, strings)."""
    import yaml

    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects key=value, got '{item}'.")
        settings[key.strip()] = yaml.safe_load(value)
    return settings


def train_editor(args: argparse.Namespace) -> int:
    """Meta-train a MEND / PropMEND / RLEdit hypernetwork from a training config."""
    from ripplebench.editors.mend.config import load_train_config
    from ripplebench.editors.mend.train import MetaTrainer

    try:
        config = load_train_config(args.config, parse_settings(args.set))
        print(f"Training into {config.out_dir}", file=sys.stderr)
        best = MetaTrainer(config).train(resume=not args.no_resume)
    except (ValueError, FileNotFoundError) as error:  # bad config or data: one clear line, no traceback
        print(f"ripplebench train-editor: {error}", file=sys.stderr)
        return 2
    print(f"Best checkpoint: {best}")
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    """Run every (model, editor, task) cell of a sweep spec; finished cells are skipped."""
    from ripplebench.harness.sweep import SpecError, load_spec, run_sweep as run, select

    try:
        report = run(select(load_spec(args.spec), _names(args.editors), _names(args.tasks)))
    except SpecError as error:
        print(f"ripplebench sweep: {error}", file=sys.stderr)
        return 2
    busy = f", {len(report.busy)} running in other sweeps" if report.busy else ""
    print(f"{len(report.results)} cells finished, {len(report.failed)} failed{busy}.")
    for cell, error in report.failed:
        print(f"  FAILED {cell.label}: {error}", file=sys.stderr)
    return 1 if report.failed else 0


def add_sweep_parser(commands) -> None:
    parser = commands.add_parser(
        "sweep", help="run models x editors x tasks from a YAML spec, resumably",
        description="Run every (model, editor, task) cell of SPEC through lm-eval (--model editing, "
        "--log_samples) and save each like `lm_eval --output_path`. Rerun the same command after a "
        "crash: finished cells are skipped and a killed cell resumes from its answered edit groups.",
    )
    parser.add_argument("spec", help="a sweep YAML file, or a bundled spec name (smoke, embedded, paper_llama3_1b)")
    parser.add_argument("--editors", default="", help="comma-separated: run only these of the spec's editors")
    parser.add_argument("--tasks", default="", help="comma-separated: run only these of the spec's tasks")
    parser.set_defaults(run=run_sweep)


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ripplebench",
        description="Knowledge-editing benchmarks inside lm-evaluation-harness. Evaluate with "
        "`lm_eval --model editing --model_args model=...,editor=... --tasks controlled_ripple_id`.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("editors", help="list editors (built-in, third-party, presets)").set_defaults(run=list_editors)
    commands.add_parser("models", help="list built-in model aliases").set_defaults(run=list_models)
    train = commands.add_parser("train-editor", help="meta-train a hypernetwork editor (mend, propmend, rledit)")
    train.add_argument("config", help="training YAML file, or a bundled preset name (editors/presets/train/)")
    train.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config values")
    train.add_argument("--no-resume", action="store_true", help="start over even if out_dir has last.pt")
    train.set_defaults(run=train_editor)
    data = commands.add_parser("data", help="generate, prepare or check datasets")
    add_dataset_commands(data.add_subparsers(dest="dataset", required=True))  # one per dataset module
    judge = commands.add_parser(
        "judge", help="score saved lm-eval sample logs (--log_samples) with the LLM judge (LLM-Score)",
        description="Judge every answer in lm-eval sample logs, write llm_* scores into them and their "
        "results file, and print the tables. Judgements already made are read from the cache. The judge "
        "is configured by RIPPLEBENCH_JUDGE_* environment variables; the options below override them.",
    )
    judge.add_argument("results", help="an lm-eval --output_path folder, a results_*.json or a samples_*.jsonl file")
    judge.add_argument("--model", help="judge model name (RIPPLEBENCH_JUDGE_MODEL)")
    judge.add_argument(
        "--base_url", help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (RIPPLEBENCH_JUDGE_BASE_URL)"
    )
    judge.add_argument("--concurrency", type=int, help="requests in flight at once (RIPPLEBENCH_JUDGE_CONCURRENCY)")
    judge.add_argument("--template", help="a jinja2 prompt template (RIPPLEBENCH_JUDGE_TEMPLATE)")
    judge.add_argument("--retry_unscorable", action="store_true", help="ask again where the cache holds no score")
    judge.add_argument("--question_field", default="question", help="document field with the question")
    judge.add_argument("--answers_field", default="answers", help="document field with the valid answers")
    judge.set_defaults(run=judge_results)
    compare = commands.add_parser(
        "compare", help="paired bootstrap test between two lm-eval runs (--log_samples)",
        description="Pair the samples of two runs by task and document (edit_id, question_id, kind) and test "
        "each metric and stratum with a paired bootstrap: difference A-B, its confidence interval, p.",
    )
    compare.add_argument("run_a", help="lm-eval output folder or results_*.json of run A")
    compare.add_argument("run_b", help="lm-eval output folder or results_*.json of run B")
    compare.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    compare.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    compare.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05, as the paper)")
    compare.set_defaults(run=compare_runs)
    add_leaderboard_parser(commands)
    add_sft_qa_parser(commands)
    add_prepare_embedded_parser(commands)
    add_sweep_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
