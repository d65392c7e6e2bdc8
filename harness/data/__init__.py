"""Datasets: generation, preparation and loading (one module per dataset).

Each module listed in MODULES exposes `add_cli(subparsers)`, which adds its own
`ripplebench data <name> ...` command to the `data` group.
"""

from __future__ import annotations

import argparse
import importlib

MODULES = ("controlled_ripple_cli", "rippleedit")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Let every dataset module add its sub-command under `ripplebench data`."""
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}").add_cli(subparsers)
