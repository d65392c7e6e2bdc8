"""RippleEdit: reading the official schema, answers, verbatim labels, splits, preparation, stats.

Expected values come from reading tests/fixtures/rippleedit/ by hand (its README lists them).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ripplebench.harness.cli import main
from ripplebench.harness.data.rippleedit.download import OFFICIAL_PAGE
from ripplebench.harness.data.rippleedit.parse import SUBSETS, atomic_fact, is_verbatim, read_subset, valid_answers
from ripplebench.harness.data.rippleedit.prepare import prepare
from ripplebench.harness.data.rippleedit.read import DATA_DIR_ENV, default_data_dir
from ripplebench.harness.data.rippleedit.read import load_split as load_edits
from ripplebench.harness.data.rippleedit.records import CRITERIA, RippleEdit
from ripplebench.harness.data.rippleedit.splits import split_edits
from ripplebench.harness.data.rippleedit.stats import prepared_statistics
from ripplebench.harness.documents import rippleedit_documents
from ripplebench.tasks.ripple_edit import utils as task_utils

FIXTURE = Path(__file__).parent / "fixtures" / "rippleedit"


def fixture_edits() -> dict[str, RippleEdit]:
    edits = [e for s in SUBSETS for e in read_subset(FIXTURE / f"{s}.json", s)]
    return {edit.edit_id: edit for edit in edits}


@pytest.fixture()
def prepared(tmp_path) -> Path:
    """The fixture prepared with 2 validation and 2 test edits."""
    prepare(str(FIXTURE), tmp_path, validation_size=2, test_size=2, seed=0)
    return tmp_path


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ([], ()),
        ([{"value": "   ", "aliases": ["Mombasa"]}], ()),  # blank value: the object does not count
        ([{"value": "London", "aliases": ["London, UK", "  "]}], ("London", "London, UK")),
        ([{"value": "male", "aliases": ["M", "man"]}], ("male", "man")),  # one letter: dropped
        ([{"value": "2", "aliases": []}], ("2",)),  # one digit: kept
        (
            [{"value": "Prince", "aliases": ["Jamie Starr"]}, {"value": "John Carminowe", "aliases": []}],
            ("Prince", "Jamie Starr", "John Carminowe"),
        ),
    ],
)
def test_valid_answers(answers, expected):
    assert valid_answers({"prompt": "q", "answers": answers}) == expected


@pytest.mark.parametrize(
    ("fact", "answers", "expected"),
    [
        ("The gender of Ada Lovelace is male.", ["male"], True),
        ("The name of the head of government of Japan is Shigeru Ishiba.", ["Japanese", "ja"], True),  # alias, any case
        ("The name of the head of state of Chile is Gabriel Boric.", ["University of Chile", "UChile"], False),
        ("The names of the siblings of Prince are Nicholas  Carminowe.", ["nicholas carminowe"], True),
    ],
)
def test_verbatim_means_a_valid_answer_occurs_in_the_fact(fact, answers, expected):
    assert is_verbatim(fact, answers) is expected


def test_fixture_queries_are_labelled_and_filtered_as_counted_by_hand():
    edits = fixture_edits()
    labels = {edit_id: [(q.type, q.verbatim) for q in edit.queries] for edit_id, edit in edits.items()}
    assert labels == {
        "popular-0": [("CI", False), ("CI", False), ("SA", True), ("SA", True), ("RS", False)],
        "popular-1": [("LG", True), ("CI", False), ("CII", True), ("SA", True), ("RS", False), ("FN", True)],
        "random-0": [("SA", True), ("RS", False), ("RS", False)],
        "random-1": [("LG", True)],
        "recent-0": [("LG", True), ("CI", False), ("RS", False)],
        "recent-1": [("CI", False), ("RS", True)],
    }
    assert {edit_id: edit.dropped for edit_id, edit in edits.items()} == {
        "popular-0": 0,
        "popular-1": 1,
        "random-0": 0,
        "random-1": 1,
        "recent-0": 0,
        "recent-1": 1,
    }
    ineligible = [edit_id for edit_id, edit in edits.items() if not edit.eligible_for_evaluation]
    assert ineligible == ["random-1"]  # no specificity question
    sa = edits["popular-0"].queries[2]
    assert sa.prompt == "The name of the country of citizenship of Leonardo Wilhelm DiCaprio is"
    assert sa.answers == ("Syria", "Syrian Arab Republic", "SY") and sa.category == "efficacy"


@pytest.mark.parametrize(
    ("fact", "relation", "expected"),
    [
        (
            "The name of the country of citizenship of Leonardo DiCaprio is Syria.",
            "COUNTRY_OF_CITIZENSHIP",
            ("The name of the country of citizenship of Leonardo DiCaprio is", "Syria", "Leonardo DiCaprio"),
        ),
        (
            "The names of the siblings of Prince are Nicholas Carminowe.",
            "SIBLING",
            ("The names of the siblings of Prince are", "Nicholas Carminowe", "Prince"),
        ),
        ("Star Wars follows Star Trek.", "FOLLOWS", ("Star Wars follows", "Star Trek", "Star Wars")),
        (
            "The name of the league which Lionel Messi plays in is Major League Soccer.",
            "LEAGUE",
            ("The name of the league which Lionel Messi plays in is", "Major League Soccer", "Lionel Messi"),
        ),
    ],
)
def test_edit_sentence_is_cut_into_prompt_target_subject(fact, relation, expected):
    assert atomic_fact(fact, relation) == dict(zip(("prompt", "target", "subject"), expected))


@pytest.mark.parametrize(
    ("fact", "relation"),
    [("Prince likes Nicholas.", "LIKES"), ("The gender of  is male.", "SEX_OR_GENDER"), ("Prince is.", "MOTHER")],
)
def test_sentences_that_do_not_fit_their_relation_give_no_triple(fact, relation):
    assert atomic_fact(fact, relation) is None


def test_fixture_edits_carry_their_triples():
    triples = {edit_id: edit.atomic_facts for edit_id, edit in fixture_edits().items()}
    assert triples["recent-1"] == (
        {"prompt": "The name of the head of government of Japan is", "target": "Shigeru Ishiba", "subject": "Japan"},
    )
    assert all(len(t) == 1 for t in triples.values())


def test_splits_hold_out_only_eligible_edits_and_keep_everything_else_in_train():
    edits = list(fixture_edits().values())
    splits = split_edits(edits, validation_size=2, test_size=2, seed=0)
    ids = {name: [e.edit_id for e in split] for name, split in splits.items()}
    assert (len(ids["validation"]), len(ids["test"]), len(ids["train"])) == (2, 2, 2)
    assert sorted(sum(ids.values(), [])) == sorted(e.edit_id for e in edits)
    assert "random-1" in ids["train"]
    assert all(e.eligible_for_evaluation for e in splits["validation"] + splits["test"])
    # train keeps file order
    order = [e.edit_id for e in edits]
    assert ids["train"] == sorted(ids["train"], key=order.index)


def test_splits_are_reproducible_and_depend_on_the_seed():
    edits = list(fixture_edits().values())

    def held_out(seed):
        splits = split_edits(edits, 2, 2, seed)
        return [e.edit_id for e in splits["validation"]], [e.edit_id for e in splits["test"]]

    assert held_out(0) == held_out(0)
    assert len({json.dumps(held_out(seed)) for seed in range(10)}) > 1


def test_split_sizes_beyond_the_eligible_edits_are_refused():
    with pytest.raises(ValueError, match="Cannot draw 3 validation \\+ 3 test edits: 5 of 6 edits"):
        split_edits(list(fixture_edits().values()), 3, 3)


def test_prepare_writes_splits_and_a_manifest(prepared):
    manifest = json.loads((prepared / "manifest.json").read_text())
    assert manifest["split_sizes"] == {"train": 2, "validation": 2, "test": 2}
    assert manifest["edits"] == {"popular": 2, "random": 2, "recent": 2}
    assert manifest["dropped_queries"] == 3 and manifest["edits_without_atomic_fact"] == 0
    test = load_edits("test", prepared)
    assert [e.edit_id for e in test] == [e.edit_id for e in split_edits(list(fixture_edits().values()), 2, 2)["test"]]
    assert test[0] == fixture_edits()[test[0].edit_id]  # records round-trip


def test_prepare_downloads_from_a_url(tmp_path):
    manifest = prepare(FIXTURE.resolve().as_uri(), tmp_path / "out", 1, 1, seed=3)
    assert manifest["split_sizes"] == {"train": 4, "validation": 1, "test": 1}


def test_offline_download_failure_says_which_files_to_place_where(tmp_path):
    with pytest.raises(ConnectionError) as error:
        prepare((tmp_path / "nowhere").as_uri(), tmp_path / "out")
    message = str(error.value)
    assert "popular.json, random.json, recent.json" in message
    assert OFFICIAL_PAGE in message and "ripplebench data rippleedit --source" in message


def test_a_git_lfs_pointer_is_not_taken_for_data(tmp_path):
    for subset in SUBSETS:
        (tmp_path / f"{subset}.json").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\n")
    with pytest.raises(ConnectionError, match="Git LFS pointer"):
        prepare(tmp_path.as_uri(), tmp_path / "out")


def test_a_folder_missing_official_files_is_named(tmp_path):
    (tmp_path / "popular.json").write_text("[]")
    with pytest.raises(FileNotFoundError, match=r"lacks random.json, recent.json\. Download"):
        prepare(str(tmp_path), tmp_path / "out")


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"example_type": "recent"}, "entry 1: not a RippleEdits entry"),
        ({"edit": {"prompt": " "}}, "entry 1: the edit has no 'prompt'"),
        ({"edit": {"prompt": "A fact."}, "Logical_Generalization": []}, "entry 1: missing criteria Compositionality_I"),
        (
            {"edit": {"prompt": "A fact."}, **{name: [] for name in CRITERIA}, "Forgetfulness": ["a test"]},
            "entry 1: Forgetfulness holds a str, not a test object",
        ),
    ],
)
def test_a_malformed_entry_is_named_by_file_and_position(tmp_path, broken, message):
    good = json.loads((FIXTURE / "recent.json").read_text())[0]
    path = tmp_path / "recent.json"
    path.write_text(json.dumps([good, broken]))
    with pytest.raises(ValueError, match=message):
        read_subset(path, "recent")


def test_data_dir_setting_and_default(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("RIPPLEBENCH_CACHE", str(tmp_path / "cache"))
    assert default_data_dir() == tmp_path / "cache" / "rippleedit"
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "mine"))
    assert default_data_dir() == tmp_path / "mine"


def test_missing_data_error_gives_the_command_to_run(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        task_utils.load_split("test", data_dir=str(tmp_path))
    assert f"ripplebench data rippleedit --data-dir {tmp_path}" in str(error.value)
    assert "RIPPLEBENCH_RIPPLEEDIT_DIR" in str(error.value)


def test_statistics_of_the_fixture_counted_by_hand(tmp_path):
    # validation takes every eligible edit, so the numbers do not depend on the shuffle
    prepare(str(FIXTURE), tmp_path, validation_size=5, test_size=0)
    stats = prepared_statistics(tmp_path)
    counts = {split: {t: (v["questions"], v["verbatim"]) for t, v in s["types"].items()} for split, s in stats.items()}
    assert counts["validation"] == {"LG": (2, 2), "CI": (5, 0), "CII": (1, 1), "SA": (4, 4), "RS": (6, 1), "FN": (1, 1)}
    assert counts["train"] == {"LG": (1, 1), "CI": (0, 0), "CII": (0, 0), "SA": (0, 0), "RS": (0, 0), "FN": (0, 0)}
    assert (stats["validation"]["edits"], stats["validation"]["questions"], stats["validation"]["verbatim"]) == (
        5,
        19,
        9,
    )
    assert stats["test"]["questions"] == 0


def test_stats_command_prints_tables_5_and_6(tmp_path, capsys):
    assert (
        main(
            [
                "data",
                "rippleedit",
                "--source",
                str(FIXTURE),
                "--data-dir",
                str(tmp_path),
                "--validation-size",
                "5",
                "--test-size",
                "0",
            ]
        )
        == 0
    )
    assert "train 1, validation 5, test 0 edits" in capsys.readouterr().out
    assert main(["data", "rippleedit", "--data-dir", str(tmp_path), "stats"]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = {line.split("  ")[0]: line.split()[-3:] for line in lines[2:]}
    assert row["# Compositionality I (CI) questions"] == ["0", "5", "0"]
    assert row["% verbatim, Relation Specificity (RS)"] == ["-", "16.7%", "-"]
    assert row["% verbatim, overall"] == ["100.0%", "47.4%", "-"]
    assert lines[-1] == "Queries dropped while preparing (no non-blank answer): 3"


def test_cli_reports_missing_data_without_a_traceback(tmp_path, capsys):
    assert main(["data", "rippleedit", "stats", "--data-dir", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("ripplebench data rippleedit: No prepared RippleEdit data") and "Traceback" not in error


def test_task_documents_carry_the_edit_and_labels(prepared):
    docs = task_utils.load_split("validation", data_dir=str(prepared))["test"]
    edits = load_edits("validation", prepared)
    assert len(docs) == sum(len(e.queries) for e in edits)
    doc = docs[0]
    assert doc["edit_id"] == edits[0].edit_id and doc["fact"] == edits[0].fact
    assert doc["atomic_facts"] == list(edits[0].atomic_facts)
    assert {d["category"] for d in docs} <= {"efficacy", "specificity"}


def test_process_results_reports_category_stratum_and_type():
    edit = fixture_edits()["recent-1"]
    ci, rs = rippleedit_documents(edit)
    assert task_utils.process_results(ci, [" 2 children."]) == {"efficacy": 1.0, "efficacy_nonverbatim": 1.0, "CI": 1.0}
    assert task_utils.process_results(ci, [" three"]) == {"efficacy": 0.0, "efficacy_nonverbatim": 0.0, "CI": 0.0}
    assert task_utils.process_results(rs, [" Japanese."]) == {
        "specificity": 1.0,
        "specificity_verbatim": 1.0,
        "RS": 1.0,
    }
    # case-sensitive as the paper's code: the alias "ja" does not match inside the question's "Japan"
    assert task_utils.process_results(rs, [" no idea"]) == {"specificity": 0.0, "specificity_verbatim": 0.0, "RS": 0.0}


def test_judged_answers_add_llm_score_to_every_stratum():
    from ripplebench.harness.llm_score import ScoredAnswer

    doc = {
        "question": "Who is the mother of X?",
        "answers": ["Y"],
        "category": "efficacy",
        "type": "CI",
        "verbatim": False,
    }
    assert task_utils.process_results(doc, ["Z"]) == {"efficacy": 0.0, "efficacy_nonverbatim": 0.0, "CI": 0.0}
    judged = task_utils.process_results(doc, [ScoredAnswer("Z", 0.7)])
    assert {key: judged[key] for key in ("llm_efficacy", "llm_efficacy_nonverbatim", "llm_CI")} == {
        "llm_efficacy": 0.7,
        "llm_efficacy_nonverbatim": 0.7,
        "llm_CI": 0.7,
    }
