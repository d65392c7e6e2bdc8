"""`ripplebench compare RUN_A RUN_B`: paired bootstrap test between two lm-eval runs."""

from __future__ import annotations

import argparse


def compare_runs(args: argparse.Namespace) -> int:
    """Paired bootstrap test of two lm-eval runs, per task, metric and stratum."""
    from ripplebench.harness.significance import compare_runs as compare
    from ripplebench.harness.significance import format_comparisons

    try:
        rows = compare(args.run_a, args.run_b, args.resamples, args.seed, args.alpha)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"ripplebench compare: {error}") from None
    print(f"RUN_A = {args.run_a}\nRUN_B = {args.run_b}")
    print(f"paired bootstrap, {args.resamples} resamples, seed {args.seed}; * = p < {args.alpha:g}")
    print(format_comparisons(rows, args.alpha))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """The `compare` subcommand."""
    parser = subparsers.add_parser(
        "compare",
        help="paired bootstrap test between two lm-eval runs (--log_samples)",
        description="Pair the samples of two runs by task and document (edit_id, question_id, kind) and test "
        "each metric and stratum with a paired bootstrap: difference A-B, its confidence interval, p.",
    )
    parser.add_argument("run_a", help="lm-eval output folder or results_*.json of run A")
    parser.add_argument("run_b", help="lm-eval output folder or results_*.json of run B")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05, as the paper)")
    parser.set_defaults(run=compare_runs)
