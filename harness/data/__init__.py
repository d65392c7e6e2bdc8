"""Datasets: one subpackage per dataset (split table, preparation or generation, reading, CLI).

Each dataset's `cli` module exposes `add_cli(subparsers)`, which adds its own
`ripplebench data <name> ...` command to the `data` group.
"""

from __future__ import annotations

import argparse
import importlib

DATASETS = ("controlled_ripple", "rippleedit")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Let every dataset add its sub-command under `ripplebench data`."""
    for name in DATASETS:
        importlib.import_module(f"{__name__}.{name}.cli").add_cli(subparsers)
