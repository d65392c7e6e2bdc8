"""Controlled RippleEdit's split table: every split's name, size, domains, files, task and display names.

This is the one place split names are spelled; the generator, the reader, the lm-eval tasks,
the leaderboard and the benchmarks import them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TASK_PREFIX = "controlled_ripple_"  # lm-eval task of a task split: controlled_ripple_<task split>


@dataclass(frozen=True)
class SplitSpec:
    """One split: how many instances, the domain of its entities and relations, and its names."""

    size: int
    entity_domain: str
    relation_domain: str
    official_file: str  # the file name in the authors' release (their code's data folder)
    task_split: str | None = None  # the lm-eval task's split name (`controlled_ripple_<task_split>`)
    display: str | None = None  # the split's name in the paper's tables (test splits)
    paper_questions: int | None = None  # Table 2's question count for the paper's test sets
    gzipped: bool = False  # train is gzipped (about 10 MB of text, 1 MB compressed)


SPLITS = {
    "train": SplitSpec(4000, "in", "in", "train_data_id.jsonl", gzipped=True),
    "validation": SplitSpec(500, "in", "in", "valid_data_id.jsonl", "val"),
    "test_id": SplitSpec(500, "in", "in", "test_data_id.jsonl", "id", "In-Domain", 2284),
    "test_ood_entity": SplitSpec(350, "out", "in", "test_data_ood-entity.jsonl", "ood_entity", "OOD (Entity)", 1368),
    "test_ood_relation": SplitSpec(
        350, "in", "out", "test_data_ood-relation.jsonl", "ood_relation", "OOD (Relation)", 421
    ),
    "test_ood_both": SplitSpec(350, "out", "out", "test_data_ood.jsonl", "ood_both", "OOD (Both)", 447),
}
SPLIT_NAMES = tuple(SPLITS)
IN_DOMAIN_SPLITS = tuple(
    name for name, spec in SPLITS.items() if (spec.entity_domain, spec.relation_domain) == ("in", "in")
)
# lm-eval task split -> dataset split ("id" -> "test_id", ..., "val" -> "validation"): test splits first
TASK_SPLITS = dict(
    sorted(
        ((spec.task_split, name) for name, spec in SPLITS.items() if spec.task_split),
        key=lambda t: not SPLITS[t[1]].display,
    )
)
# the test splits' task split -> display name, in the paper's order (Table 2)
TEST_TASK_SPLITS = {spec.task_split: spec.display for spec in SPLITS.values() if spec.task_split and spec.display}


def split_path(data_dir: Path, split: str) -> Path:
    """The file of a split in a folder of generated splits: <split>.jsonl, or .jsonl.gz if gzipped."""
    return Path(data_dir) / (f"{split}.jsonl.gz" if SPLITS[split].gzipped else f"{split}.jsonl")


def task_name(task_split: str, suffix: str = "") -> str:
    """The lm-eval task of a task split: "ood_entity" -> "controlled_ripple_ood_entity" (+ suffix)."""
    return f"{TASK_PREFIX}{task_split}{suffix}"
