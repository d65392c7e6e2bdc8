"""`ripplebench leaderboard RUNS... --out DIR`: the paper's tables and plots from lm-eval runs."""

from __future__ import annotations

import argparse


def make_leaderboard(args: argparse.Namespace) -> int:
    """Render the tables and plots of the runs into --out."""
    from pathlib import Path

    from ripplebench.leaderboards.leaderboard import build_leaderboard
    from ripplebench.leaderboards.plots import plots
    from ripplebench.leaderboards.render import write_outputs

    try:
        board = build_leaderboard(args.runs, args.baseline, args.resamples, args.seed)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"ripplebench leaderboard: {error}") from None
    written = write_outputs(board, Path(args.out), plots(board))
    print(f"{len(board.tables)} tables from {len(board.runs)} task runs; wrote {len(written)} files to {args.out}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """The `leaderboard` subcommand (found by the `ripplebench` command line through the
    `ripplebench.commands` entry-point group, like harness/commands/*)."""
    parser = subparsers.add_parser(
        "leaderboard",
        help="render lm-eval runs (--log_samples) as the paper's tables, with plots",
        description="Group runs by model and task, one row per editor, and write leaderboard.md, .csv, .json, "
        "plots/*.png and a self-contained index.html into --out. Runs of one task and model must hold the "
        "same documents and --limit; a marker flags cells that differ from --baseline (paired bootstrap).",
    )
    parser.add_argument("runs", nargs="+", help="lm-eval output folders or results_*.json files")
    parser.add_argument("--out", required=True, help="folder to write the leaderboard into")
    parser.add_argument("--baseline", default="none", help="editor whose row the others are tested against")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.set_defaults(run=make_leaderboard)
