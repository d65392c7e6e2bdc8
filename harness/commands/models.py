"""`ripplebench models`: list the built-in model aliases."""

from __future__ import annotations

import argparse


def list_models(_: argparse.Namespace) -> int:
    """Print the built-in model aliases."""
    from ripplebench.core.models import ALIASES

    for name, alias in ALIASES.items():
        print(f"{name}  {alias.description} (install: {alias.install})")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """The `models` subcommand."""
    subparsers.add_parser("models", help="list built-in model aliases").set_defaults(run=list_models)
