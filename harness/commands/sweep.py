"""`ripplebench sweep SPEC`: run models x editors x tasks from a YAML spec, resumably."""

from __future__ import annotations

import argparse
import sys


def run_sweep(args: argparse.Namespace) -> int:
    """Run every (model, editor, task) cell of a sweep spec; finished cells are skipped."""
    from ripplebench.harness.sweep import SpecError, load_spec, select
    from ripplebench.harness.sweep import run_sweep as run

    try:
        report = run(select(load_spec(args.spec), names(args.editors), names(args.tasks)))
    except SpecError as error:
        print(f"ripplebench sweep: {error}", file=sys.stderr)
        return 2
    busy = f", {len(report.busy)} running in other sweeps" if report.busy else ""
    print(f"{len(report.results)} cells finished, {len(report.failed)} failed{busy}.")
    for cell, error in report.failed:
        print(f"  FAILED {cell.label}: {error}", file=sys.stderr)
    return 1 if report.failed else 0


def names(text: str) -> list[str]:
    """The names of a comma-separated option, blanks left out."""
    return [name.strip() for name in text.split(",") if name.strip()]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """The `sweep` subcommand."""
    parser = subparsers.add_parser(
        "sweep",
        help="run models x editors x tasks from a YAML spec, resumably",
        description="Run every (model, editor, task) cell of SPEC through lm-eval (--model editing, "
        "--log_samples) and save each like `lm_eval --output_path`. Rerun the same command after a "
        "crash: finished cells are skipped and a killed cell resumes from its answered edit groups.",
    )
    parser.add_argument("spec", help="a sweep YAML file, or a bundled spec name (smoke, embedded, paper_llama3_1b)")
    parser.add_argument("--editors", default="", help="comma-separated: run only these of the spec's editors")
    parser.add_argument("--tasks", default="", help="comma-separated: run only these of the spec's tasks")
    parser.set_defaults(run=run_sweep)
