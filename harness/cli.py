"""The `ripplebench` command line: assembles the subcommands, one module each.

The subcommand modules are named by the `ripplebench.commands` entry-point group (pyproject.toml:
harness/commands/*, and leaderboards/command.py, which the harness may not import); each has
`add_parser(subparsers)`, which sets `run=` (see harness/commands). Entry points come back in no
useful order, so `HELP_ORDER` lists ripplebench's own; any other package's commands follow.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Sequence

COMMANDS_GROUP = "ripplebench.commands"
HELP_ORDER = (
    "editors", "models", "train-editor", "data", "judge", "compare", "leaderboard", "sft-qa", "prepare-embedded", "sweep",
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The parser with every installed subcommand, ripplebench's in `HELP_ORDER`, then the others by name."""
    parser = argparse.ArgumentParser(
        prog="ripplebench",
        description="Knowledge-editing benchmarks inside lm-evaluation-harness. Evaluate with "
        "`lm_eval --model editing --model_args model=...,editor=... --tasks controlled_ripple_id`.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    # One distribution visible twice on sys.path lists its entry points twice: the first wins.
    commands: dict[str, EntryPoint] = {}
    for entry in entry_points(group=COMMANDS_GROUP):
        commands.setdefault(entry.name, entry)
    rank = {name: index for index, name in enumerate(HELP_ORDER)}
    for name in sorted(commands, key=lambda name: (rank.get(name, len(rank)), name)):
        commands[name].load().add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen subcommand; its exit status."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
