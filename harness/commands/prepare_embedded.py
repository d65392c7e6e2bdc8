"""`ripplebench prepare-embedded`: build the embedded -QA model (alias smollm2-135m-qa) once."""

from __future__ import annotations

import argparse


def prepare_embedded(args: argparse.Namespace) -> int:
    """Build the embedded -QA model into the cache, or reuse it."""
    from ripplebench.harness.embedded_qa import EVAL_QUESTIONS
    from ripplebench.harness.embedded_qa import prepare_embedded as prepare

    questions = EVAL_QUESTIONS if args.eval_questions is None else args.eval_questions
    try:
        folder = prepare(eval_questions=questions, device=args.device)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"ripplebench prepare-embedded: {error}") from None
    print(f"smollm2-135m-qa: {folder} (model card: {folder / 'README.md'})")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """The `prepare-embedded` subcommand."""
    parser = subparsers.add_parser(
        "prepare-embedded",
        help="build the embedded -QA model, alias smollm2-135m-qa (once; training took 28 min on 2 CPU cores)",
        description="Fine-tune smollm2-135m on every single-hop pair of the Controlled RippleEdit training "
        "split (the README's measured sft-qa recipe) into $RIPPLEBENCH_CACHE/models/smollm2-135m-qa, with "
        "a model card; reruns reuse the built model.",
    )
    parser.add_argument(
        "--eval-questions",
        type=int,
        default=None,
        help="score exact match before and after on the first N single-hop questions of the validation "
        "split (default 450: those of its first 100 instances; 0 skips it)",
    )
    parser.add_argument("--device", default="cpu")
    parser.set_defaults(run=prepare_embedded)
