"""`ripplebench train-editor CONFIG`: meta-train a MEND / PropMEND / RLEdit hypernetwork."""

from __future__ import annotations

import argparse
import sys


def train_editor(args: argparse.Namespace) -> int:
    """Meta-train a hypernetwork from a training config; bad config or data: one clear line."""
    from ripplebench.core.settings import parse_assignments
    from ripplebench.harness.hypernet_training import meta_trainer, training_config

    try:
        config = training_config(args.config, parse_assignments(args.set))
        print(f"Training into {config.out_dir}", file=sys.stderr)
        best = meta_trainer(config).train(resume=not args.no_resume)
    except (ValueError, FileNotFoundError) as error:
        print(f"ripplebench train-editor: {error}", file=sys.stderr)
        return 2
    print(f"Best checkpoint: {best}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """The `train-editor` subcommand."""
    parser = subparsers.add_parser("train-editor", help="meta-train a hypernetwork editor (mend, propmend, rledit)")
    parser.add_argument("config", help="training YAML file, or a bundled preset name (editors/presets/train/)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config values")
    parser.add_argument("--no-resume", action="store_true", help="start over even if out_dir has last.pt")
    parser.set_defaults(run=train_editor)
