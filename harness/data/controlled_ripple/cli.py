"""`ripplebench data controlled-ripple generate|validate`.

Run from the repository root, both read the knowledge base in harness/data/controlled_ripple/kb/
and write/read the splits in tasks/controlled_ripple/data/ of the checkout (elsewhere: the
installed package's copies, or --kb-dir / --data-dir).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ripplebench.core.io import read_text
from ripplebench.core.knowledge_base import ENTITY_TYPES, KnowledgeBaseError, load_knowledge_base
from ripplebench.core.paths import CONTROLLED_RIPPLE_DATA_DIR, CONTROLLED_RIPPLE_KB_DIR, PACKAGE_ROOT
from ripplebench.harness.data.controlled_ripple.card import count_table, write_card
from ripplebench.harness.data.controlled_ripple.generate import generate
from ripplebench.harness.data.controlled_ripple.kb_checks import independent_source_problems, knowledge_base_problems
from ripplebench.harness.data.controlled_ripple.read import read_instances
from ripplebench.harness.data.controlled_ripple.split_checks import split_problems
from ripplebench.harness.data.controlled_ripple.splits import SPLITS, split_path
from ripplebench.harness.data.controlled_ripple.templates import load_story_templates, template_problems
from ripplebench.harness.data.controlled_ripple.write import serialize, write_splits

# The same folders relative to the repository root: used when run from a checkout.
CHECKOUT_KB_DIR = CONTROLLED_RIPPLE_KB_DIR.relative_to(PACKAGE_ROOT)
CHECKOUT_DATA_DIR = CONTROLLED_RIPPLE_DATA_DIR.relative_to(PACKAGE_ROOT)


def default_kb_dir() -> Path:
    """The checkout's knowledge base when run from the repository root, else the installed one."""
    return CHECKOUT_KB_DIR if CHECKOUT_KB_DIR.is_dir() else CONTROLLED_RIPPLE_KB_DIR


def default_data_dir() -> Path:
    """The checkout's split folder when run from the repository root, else the installed one."""
    return CHECKOUT_DATA_DIR if CHECKOUT_DATA_DIR.is_dir() else CONTROLLED_RIPPLE_DATA_DIR


def _fail(title: str, problems: list[str]) -> int:
    print(f"FAILED: {title} ({len(problems)} problem(s)):", file=sys.stderr)
    for problem in problems[:50]:
        print(f"  - {problem}", file=sys.stderr)
    if len(problems) > 50:
        print(f"  ... and {len(problems) - 50} more", file=sys.stderr)
    return 1


def run_generate(args: argparse.Namespace) -> int:
    """Generate every split from the knowledge base, check it, write it with its dataset card."""
    types = [name.strip() for name in args.types.split(",") if name.strip()]
    try:
        kb = load_knowledge_base(args.kb_dir, types)
    except KnowledgeBaseError as error:
        return _fail("cannot read the knowledge base", [str(error)])
    splits = generate(kb, args.seed)
    problems = split_problems(splits, kb)
    if problems:
        return _fail("the generated splits break their promises; nothing written", problems)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    for path in [*write_splits(splits, args.data_dir), write_card(splits, kb, args.seed, args.data_dir)]:
        print(f"wrote {path}")
    print(count_table(splits))
    if set(types) != set(ENTITY_TYPES):
        print(f"NOTE: only types {', '.join(types)}; do not commit these splits.", file=sys.stderr)
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """Check the knowledge base, the templates and the committed splits; exit 1 on any problem."""
    try:
        kb = load_knowledge_base(args.kb_dir)
    except KnowledgeBaseError as error:
        return _fail("cannot read the knowledge base", [str(error)])
    problems = knowledge_base_problems(kb)
    source_problems, skipped = independent_source_problems(kb)
    problems += source_problems + template_problems(load_story_templates(), list(kb))
    for note in skipped:
        print(f"WARNING: independent-source check skipped: {note} (pip install 'ripplebench[data]')", file=sys.stderr)
    if problems:
        return _fail(f"knowledge base {args.kb_dir}", problems)
    print(
        f"knowledge base {args.kb_dir}: {sum(len(t.entities) for t in kb.values())} entities, "
        f"{sum(len(t.relations) for t in kb.values())} relations, every answer present, non-empty, unique"
    )
    try:
        splits = {split: read_instances(split_path(args.data_dir, split)) for split in SPLITS}
    except (OSError, ValueError) as error:
        return _fail(f"splits in {args.data_dir}", [f"{error} (run `ripplebench data controlled-ripple generate`)"])
    problems = split_problems(splits, kb)
    fresh = generate(kb, args.seed)
    problems += [
        f"{split}: differs from a fresh generation with --seed {args.seed}; rerun generate"
        for split in SPLITS
        if read_text(split_path(args.data_dir, split)) != serialize(fresh[split])
    ]
    if problems:
        return _fail(f"splits in {args.data_dir}", problems)
    print(f"splits in {args.data_dir}: counts, domains, OOD disjointness, answers and templates check out")
    print(count_table(splits))
    return 0


def add_cli(datasets: argparse._SubParsersAction) -> None:
    """Add `controlled-ripple` with its `generate` and `validate` commands to `ripplebench data`."""
    parser = datasets.add_parser("controlled-ripple", help="Controlled RippleEdit: generate or validate the splits")
    actions = parser.add_subparsers(dest="action", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--seed", type=int, default=0, help="random seed (default 0, the committed splits)")
    common.add_argument("--kb-dir", type=Path, default=default_kb_dir(), help="knowledge-base folder")
    common.add_argument("--data-dir", type=Path, default=default_data_dir(), help="folder of the split files")
    generate_parser = actions.add_parser("generate", parents=[common], help="write every split and the dataset card")
    generate_parser.add_argument(
        "--types", default=",".join(ENTITY_TYPES), help="comma-separated entity types (default: all seven)"
    )
    generate_parser.set_defaults(run=run_generate)
    validate = actions.add_parser(
        "validate", parents=[common], help="check the knowledge base and the splits; exit 1 on any problem"
    )
    validate.set_defaults(run=run_validate)
