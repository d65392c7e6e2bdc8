"""The `ripplebench` command line."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence


def list_editors(_: argparse.Namespace) -> int:
    """Print every editor and preset that `editor=` accepts, with a one-line description."""
    from ripplebench.editors.registry import available_editors, describe

    entries = available_editors().values()
    width = max(len(entry.name) for entry in entries)
    for entry in entries:
        try:
            text = describe(entry)
        except Exception as error:  # a broken third-party editor must not hide the others
            text = f"(cannot be loaded: {error})"
        print(f"{entry.name:<{width}}  [{entry.source}]  {text}")
    return 0


def list_models(_: argparse.Namespace) -> int:
    """Print the built-in model aliases."""
    from ripplebench.harness.models import ALIASES

    for name, alias in ALIASES.items():
        print(f"{name}  {alias.description} (install: {alias.install})")
    return 0


def sft_qa(args: argparse.Namespace) -> int:
    """Make a "-QA" model: two short-answer SFT stages (paper Table 23), then save it."""
    from pathlib import Path

    from ripplebench.harness.models import load_model, resolve_model
    from ripplebench.harness.prompts import resolve_prompt_format
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ripplebench",
        description="Knowledge-editing benchmarks inside lm-evaluation-harness. Evaluate with "
        "`lm_eval --model editing --model_args model=...,editor=... --tasks controlled_ripple_id`.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("editors", help="list editors (built-in, third-party, presets)").set_defaults(run=list_editors)
    commands.add_parser("models", help="list built-in model aliases").set_defaults(run=list_models)
    data = commands.add_parser("data", help="generate, prepare or check datasets")
    data.add_subparsers(dest="dataset", required=True)  # one sub-command per dataset module
    add_sft_qa_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
