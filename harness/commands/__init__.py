"""The `ripplebench` subcommands, one module each.

Every command module has `add_parser(subparsers)`, which adds its parser and sets `run=` to a
function taking the parsed arguments and returning the exit status. harness/cli.py finds the
modules through the `ripplebench.commands` entry-point group (pyproject.toml), so a package
above the harness (leaderboards) or outside ripplebench adds commands without being imported
here. Modules stay import-light: the work is imported inside `run`.
"""
