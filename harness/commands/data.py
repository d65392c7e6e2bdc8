"""`ripplebench data DATASET ...`: generate, prepare or check datasets (one subcommand per dataset)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """The `data` subcommand; each dataset module adds its own subcommands under it."""
    from ripplebench.harness.data import add_commands

    parser = subparsers.add_parser("data", help="generate, prepare or check datasets")
    add_commands(parser.add_subparsers(dest="dataset", required=True))
