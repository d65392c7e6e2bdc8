"""benchmarks/multi_edit.py asks the single, 10-edit and 20-edit runs exactly the same questions."""

from __future__ import annotations

import pytest
from helpers import load_benchmark, requires_controlled_ripple_splits


@pytest.fixture(scope="module")
def multi_edit():
    return load_benchmark("multi_edit")


@requires_controlled_ripple_splits
@pytest.mark.parametrize("split", ["id", "ood_both"])
def test_the_three_settings_select_the_same_questions_under_their_group_sizes(multi_edit, split):
    members = multi_edit.group_instances(split, 2)
    assert len(members) == 10
    asked = {}
    for setting, (_, size) in multi_edit.SETTINGS.items():
        _, docs = multi_edit.setting_documents(split, setting)
        chosen = [doc for doc in docs if doc["edit_id"] in members]
        asked[setting] = sorted((doc["edit_id"], doc["question_id"], doc["kind"]) for doc in chosen)
        for doc in chosen:
            applied = [edit["edit_id"] for edit in doc.get("edits", [])]
            assert len(applied) == size and (not size or set(members) <= set(applied))
    assert asked["single"] == asked["multi10"] == asked["multi20"] and len(set(asked["single"])) == len(asked["single"])


@requires_controlled_ripple_splits
def test_a_group_past_the_last_is_refused_naming_the_range(multi_edit):
    with pytest.raises(ValueError, match=r"--group 99 does not exist: the ood_both split has multi10 groups 1-35"):
        multi_edit.group_instances("ood_both", 99)
