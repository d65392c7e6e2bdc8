"""`ripplebench sft-qa`: make a "-QA" model with the paper's two short-answer SFT stages (Table 23)."""

from __future__ import annotations

import argparse


def sft_qa(args: argparse.Namespace) -> int:
    """Fine-tune the model in two stages, then save it into --output."""
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
    try:
        stage1_settings = override_settings(TRIVIAQA_SETTINGS, args.stage1_set, "--stage1-set")
        stage2_settings = override_settings(RIPPLE_QA_SETTINGS, args.stage2_set, "--stage2-set")
    except ValueError as error:
        raise SystemExit(f"ripplebench sft-qa: {error}") from None
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


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """The `sft-qa` subcommand."""
    parser = subparsers.add_parser(
        "sft-qa",
        help="fine-tune a model to answer briefly (the paper's -QA models, Table 23)",
        description="Two SFT stages with the paper's Table 23 settings: (1) TriviaQA, (2) single-hop "
        "QA about the benchmark's entities; the result is a folder usable as model=...",
    )
    parser.add_argument("--model", default="smollm2-135m", help="base model: alias, folder or Hugging Face id")
    parser.add_argument("--output", required=True, help="folder to create for the fine-tuned model")
    parser.add_argument(
        "--stage1",
        default="triviaqa",
        help="'triviaqa' (through `datasets`; skipped with a note when offline), 'none', or a JSON-lines file",
    )
    parser.add_argument("--stage1-pairs", type=int, default=None, help="use at most this many stage-1 pairs")
    parser.add_argument(
        "--stage2",
        default=None,
        help="JSON-lines QA file or Controlled RippleEdit instances (default: its training split)",
    )
    parser.add_argument("--stage2-pairs", type=int, default=500, help="stage-2 pairs (paper: 500)")
    parser.add_argument(
        "--eval",
        default=None,
        help="QA file scored before and after training (exact match, answer length); kept out of training",
    )
    parser.add_argument(
        "--train-on-eval",
        action="store_true",
        help="let stage 2 draw --eval questions too (the paper's stage 2 reinforces the facts the benchmark "
        "asks about); the report counts how many were trained on",
    )
    for stage, table in (("stage1", "23 (a)"), ("stage2", "23 (b)")):
        parser.add_argument(
            f"--{stage}-set",
            action="append",
            default=[],
            metavar="FIELD=VALUE",
            help=f"change a {stage} training setting from its Table {table} value, e.g. lr=1e-5, "
            "epochs=3, batch_size, micro_batch_size (memory only), warmup_ratio; repeatable",
        )
    parser.add_argument("--prompt-format", default="auto", help="auto, chat, qa or raw (as --model editing)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(run=sft_qa)
