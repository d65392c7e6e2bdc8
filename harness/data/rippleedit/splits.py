"""RippleEdit's split table and PropMEND's split of the official edits (section 4.1, Appendix D).

The union of the three official files is split with a seeded shuffle: validation and test are
drawn from the edits that keep at least one efficacy and one specificity query, every other
edit goes to train (500 / 500 / 3,686 on the official data).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

from ripplebench.harness.data.rippleedit.records import RippleEdit

SPLITS = ("train", "validation", "test")


def split_path(data_dir: Path, split: str) -> Path:
    """The prepared file of a split: <data_dir>/<split>.jsonl."""
    return Path(data_dir) / f"{split}.jsonl"


def split_edits(
    edits: Sequence[RippleEdit], validation_size: int = 500, test_size: int = 500, seed: int = 0
) -> dict[str, list[RippleEdit]]:
    """PropMEND's splits: seeded validation and test draws from the eligible edits, the rest train.

    Eligible edits (at least one efficacy and one specificity question) are shuffled with
    `random.Random(seed)`; the first `validation_size` form validation, the next `test_size`
    test. Train keeps every other edit in file order, ineligible ones included.
    """
    eligible = [edit for edit in edits if edit.eligible_for_evaluation]
    if validation_size < 0 or test_size < 0 or validation_size + test_size > len(eligible):
        raise ValueError(
            f"Cannot draw {validation_size} validation + {test_size} test edits: {len(eligible)} of "
            f"{len(edits)} edits have both an efficacy and a specificity question."
        )
    order = list(eligible)
    random.Random(seed).shuffle(order)
    validation = order[:validation_size]
    test = order[validation_size : validation_size + test_size]
    held_out = {edit.edit_id for edit in validation + test}
    train = [edit for edit in edits if edit.edit_id not in held_out]
    return dict(zip(SPLITS, (train, validation, test)))
