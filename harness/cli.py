"""The `ripplebench` command line."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence


def list_editors(_: argparse.Namespace) -> int:
    """Print every editor and preset that `editor=` accepts, with a one-line description."""
    from ripplebench.editors.registry import available_editors, describe

    entries = available_editors().values()
    width = max(len(entry.name) for entry in entries)
    for entry in entries:
        try:
            text = describe(entry)
        except Exception as error:  # a broken third-party editor must not hide the others
            text = f"(cannot be loaded: {error})"
        print(f"{entry.name:<{width}}  [{entry.source}]  {text}")
    return 0


def list_models(_: argparse.Namespace) -> int:
    """Print the built-in model aliases."""
    from ripplebench.harness.models import ALIASES

    for name, alias in ALIASES.items():
        print(f"{name}  {alias.description} (install: {alias.install})")
    return 0


def parse_settings(items: Sequence[str]) -> dict:
    """`key=value` pairs, values parsed as YAML scalars (numbers, booleans, strings)."""
    import yaml

    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects key=value, got '{item}'.")
        settings[key.strip()] = yaml.safe_load(value)
    return settings


def train_editor(args: argparse.Namespace) -> int:
    """Meta-train a MEND / PropMEND / RLEdit hypernetwork from a training config."""
    from ripplebench.editors.mend.train import MetaTrainer, load_train_config

    try:
        config = load_train_config(args.config, parse_settings(args.set))
        best = MetaTrainer(config).train(resume=not args.no_resume)
    except ValueError as error:  # bad config or data: one clear line, no traceback
        print(f"ripplebench train-editor: {error}", file=sys.stderr)
        return 2
    print(f"Best checkpoint: {best}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ripplebench",
        description="Knowledge-editing benchmarks inside lm-evaluation-harness. Evaluate with "
        "`lm_eval --model editing --model_args model=...,editor=... --tasks controlled_ripple_id`.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("editors", help="list editors (built-in, third-party, presets)").set_defaults(run=list_editors)
    commands.add_parser("models", help="list built-in model aliases").set_defaults(run=list_models)
    train = commands.add_parser("train-editor", help="meta-train a hypernetwork editor (mend, propmend, rledit)")
    train.add_argument("config", help="training YAML file, or a bundled preset name (editors/presets/train/)")
    train.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config values")
    train.add_argument("--no-resume", action="store_true", help="start over even if out_dir has last.pt")
    train.set_defaults(run=train_editor)
    data = commands.add_parser("data", help="generate, prepare or check datasets")
    data.add_subparsers(dest="dataset", required=True)  # one sub-command per dataset module
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
