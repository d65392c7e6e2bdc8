"""`ripplebench editors`: list the editors and presets that `editor=` accepts."""

from __future__ import annotations

import argparse


def list_editors(_: argparse.Namespace) -> int:
    """Print every editor and preset that `editor=` accepts, with a one-line description and,
    where it has one, its state here (hypernetworks: trained here / not trained here)."""
    from ripplebench.editors.registry import available_editors, build_editor, describe

    entries = available_editors().values()
    width = max(len(entry.name) for entry in entries)
    for entry in entries:
        try:
            text = describe(entry)
            state = build_editor(entry.name).status()
        except Exception as error:  # a broken third-party editor must not hide the others
            text, state = f"(cannot be loaded: {error})", ""
        tags = f"[{entry.source}]" + (f" [{state}]" if state else "")
        print(f"{entry.name:<{width}}  {tags}  {text}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """The `editors` subcommand."""
    parser = subparsers.add_parser("editors", help="list editors (built-in, third-party, presets)")
    parser.set_defaults(run=list_editors)
