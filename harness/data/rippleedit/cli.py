"""`ripplebench data rippleedit [stats]`: prepare RippleEdit, or print its statistics."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Callable

from ripplebench.harness.data.rippleedit.download import OFFICIAL_URL
from ripplebench.harness.data.rippleedit.prepare import prepare
from ripplebench.harness.data.rippleedit.read import DATA_DIR_ENV, MANIFEST, resolve_data_dir
from ripplebench.harness.data.rippleedit.stats import format_statistics, prepared_statistics


def _run_prepare(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    manifest = prepare(args.source, args.data_dir, args.validation_size, args.test_size, args.seed)
    folder = resolve_data_dir(args.data_dir)
    sizes = ", ".join(f"{split} {size}" for split, size in manifest["split_sizes"].items())
    print(f"Prepared RippleEdit in {folder}: {sizes} edits.")


def _run_stats(args: argparse.Namespace) -> None:
    folder = resolve_data_dir(args.data_dir)
    table = format_statistics(prepared_statistics(folder))
    print(f"RippleEdit questions per propagation type ({folder})")
    print(table)
    manifest = folder / MANIFEST
    if manifest.is_file():
        dropped = json.loads(manifest.read_text(encoding="utf-8"))["dropped_queries"]
        print(f"Queries dropped while preparing (no non-blank answer): {dropped}")


def _without_traceback(command: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], int]:
    """Run a command; report a bad input or missing data as one line on stderr (exit status 1)."""

    def run(args: argparse.Namespace) -> int:
        try:
            command(args)
        except (OSError, ValueError) as error:
            print(f"ripplebench data rippleedit: {error}", file=sys.stderr)
            return 1
        return 0

    return run


def add_cli(datasets: argparse._SubParsersAction) -> None:
    """Add `ripplebench data rippleedit [stats]` to the `data` command's sub-parsers."""
    parser = datasets.add_parser(
        "rippleedit",
        help="prepare RippleEdit (official files -> paper splits) or print its statistics",
        description="Prepare RippleEdit: read popular.json, random.json and recent.json, label every "
        "query, and write the paper's train/validation/test splits.",
    )
    parser.add_argument(
        "--source",
        default=OFFICIAL_URL,
        help="a folder holding the three official files, or a base URL to download them from "
        "(default: the RippleEdits repository)",
    )
    data_dir_help = f"where prepared data goes (default: ${DATA_DIR_ENV}, else the ripplebench cache)"
    parser.add_argument("--data-dir", help=data_dir_help)
    parser.add_argument("--validation-size", type=int, default=500, help="validation edits (paper: 500)")
    parser.add_argument("--test-size", type=int, default=500, help="test edits (paper: 500)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split shuffle")
    parser.set_defaults(run=_without_traceback(_run_prepare))
    actions = parser.add_subparsers(dest="action")
    stats = actions.add_parser("stats", help="print questions per propagation type and verbatim rates")
    # SUPPRESS keeps a --data-dir given before `stats` from being reset to None by this parser.
    stats.add_argument("--data-dir", default=argparse.SUPPRESS, help=data_dir_help)
    stats.set_defaults(run=_without_traceback(_run_stats))
