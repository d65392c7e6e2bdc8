"""The answered-edit-groups journal: what a killed run leaves behind, and what a rerun reuses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_engine import RecordingEditor, interleaved_queries

from ripplebench.harness.engine import EditThenQuery
from ripplebench.harness.journal import EditJournal
from ripplebench.harness.locks import Busy

KEY = {"model": "tiny", "editor": "prepend", "editor_config": {"template": "Imagine that"}, "task": "t"}
STATS = {"edit_seconds": 0.5, "train_tokens": 12}


def journal_lines(journal: EditJournal) -> list[dict]:
    return [json.loads(line) for line in journal.path.read_text(encoding="utf-8").splitlines()]


def test_a_reopened_journal_returns_the_answers_and_edit_stats_of_finished_groups(tmp_path):
    journal = EditJournal(tmp_path, "t", KEY)
    journal.record(["e1"], ["q1?", "q2?"], ["a1", "a2"], STATS)
    journal.close()

    reopened = EditJournal(tmp_path, "t", KEY)
    record = reopened.lookup(["e1"], ["q1?", "q2?"])
    assert (record.answers, record.edit_stats) == (("a1", "a2"), STATS)
    assert reopened.lookup(["e2"], ["q3?"]) is None
    assert reopened.summary()["reused_groups"] == 1


def test_a_journal_in_use_is_refused_naming_it_and_opens_again_once_closed(tmp_path):
    first = EditJournal(tmp_path, "t", KEY)
    first.record(["e1"], ["q1?"], ["a1"], STATS)
    with pytest.raises(Busy, match=f"Journal {first.path} is in use by another process"):
        EditJournal(tmp_path, "t", KEY)
    with pytest.raises(Busy):
        EditJournal(tmp_path, "t", KEY, resume=False)  # which would otherwise empty it
    first.record(["e2"], ["q2?"], ["a2"], STATS)
    assert len(journal_lines(first)) == 3
    first.close()
    reopened = EditJournal(tmp_path, "t", KEY)
    assert reopened.lookup(["e1"], ["q1?"]) is not None and reopened.lookup(["e2"], ["q2?"]) is not None


def test_every_record_is_fsynced_before_record_returns(tmp_path, monkeypatch):
    journal = EditJournal(tmp_path, "t", KEY)
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    journal.record(["e1"], ["q1?"], ["a1"], STATS)
    assert synced == [journal._file.fileno()]
    # On disk already, read through another handle while the journal is still open.
    assert journal_lines(journal)[-1]["answers"] == ["a1"]
    journal.record(["e2"], ["q2?"], ["a2"], STATS)
    assert len(synced) == 2


def test_a_torn_last_line_is_ignored_and_cut_off_before_the_next_append(tmp_path):
    journal = EditJournal(tmp_path, "t", KEY)
    journal.record(["e1"], ["q1?"], ["a1"], STATS)
    journal.close()
    with journal.path.open("a", encoding="utf-8") as out:
        out.write('{"edit_ids": ["e2"], "questions": ["q2?"], "answ')  # killed mid-write

    reopened = EditJournal(tmp_path, "t", KEY)
    assert reopened.lookup(["e1"], ["q1?"]) is not None and reopened.lookup(["e2"], ["q2?"]) is None
    reopened.record(["e2"], ["q2?"], ["a2"], STATS)
    reopened.close()
    assert [line.get("edit_ids") for line in journal_lines(reopened)] == [None, ["e1"], ["e2"]]


def test_a_corrupt_line_before_the_last_names_the_file_and_line(tmp_path):
    journal = EditJournal(tmp_path, "t", KEY)
    journal.record(["e1"], ["q1?"], ["a1"], STATS)
    journal.record(["e2"], ["q2?"], ["a2"], STATS)
    journal.close()
    lines = journal.path.read_text(encoding="utf-8").splitlines()
    lines[1] = "not json"
    journal.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"Journal {journal.path}, line 2: not valid JSON"):
        EditJournal(tmp_path, "t", KEY)


@pytest.mark.parametrize(
    "change",
    [{"editor_config": {"template": "Suppose that"}}, {"task": "other"}, {"data": "another hash"}, {"model": "x"}],
)
def test_a_changed_configuration_never_sees_the_old_answers(tmp_path, change):
    journal = EditJournal(tmp_path, "t", KEY)
    journal.record(["e1"], ["q1?"], ["a1"], STATS)
    journal.close()
    changed = EditJournal(tmp_path, "t", {**KEY, **change})
    assert changed.path != journal.path
    assert changed.lookup(["e1"], ["q1?"]) is None


def test_a_journal_whose_header_names_another_configuration_is_refused(tmp_path):
    journal = EditJournal(tmp_path, "t", KEY)
    journal.close()
    other = EditJournal(tmp_path, "t", {**KEY, "task": "other"})
    other.close()
    os.replace(other.path, journal.path)  # e.g. a file copied by hand
    with pytest.raises(ValueError, match="was written for another configuration"):
        EditJournal(tmp_path, "t", KEY)


def test_resume_false_starts_fresh(tmp_path):
    journal = EditJournal(tmp_path, "t", KEY)
    journal.record(["e1"], ["q1?"], ["a1"], STATS)
    journal.close()
    fresh = EditJournal(tmp_path, "t", KEY, resume=False)
    assert fresh.lookup(["e1"], ["q1?"]) is None
    assert len(journal_lines(fresh)) == 1  # the header only


def test_a_group_journaled_with_other_questions_is_refused(tmp_path):
    journal = EditJournal(tmp_path, "t", KEY)
    journal.record(["e1"], ["q1?"], ["a1"], STATS)
    with pytest.raises(ValueError, match="edit group e1 with other questions"):
        journal.lookup(["e1"], ["q1?", "q9?"])


def test_the_engine_applies_no_editor_for_journaled_groups_and_keeps_their_stats(tiny, tmp_path):
    queries = interleaved_queries()  # edits a, b, c
    first = EditThenQuery(tiny, RecordingEditor(), "raw", batch_size=4)
    journal = EditJournal(tmp_path, "t", KEY)
    expected = first.run(queries, progress=False, journal=journal)
    journal.close()
    assert [line.get("edit_ids") for line in journal_lines(journal)[1:]] == [["a"], ["b"], ["c"]]

    # Keep only group a in the journal, as if the run had been killed after it.
    journal.path.write_text("".join(journal.path.read_text().splitlines(keepends=True)[:2]))
    editor = RecordingEditor()
    second = EditThenQuery(tiny, editor, "raw", batch_size=4)
    resumed = EditJournal(tmp_path, "t", KEY)
    assert second.run(queries, progress=False, journal=resumed) == expected
    assert editor.events == [("apply", ("b",)), ("revert", ("b",)), ("apply", ("c",)), ("revert", ("c",))]
    assert second.edit_stats[0] == first.edit_stats[0]  # group a's stats, timing included, come back
    assert (resumed.reused, resumed.recorded) == (1, 2)


def test_without_journal_arg_the_journals_live_in_the_cache_until_the_run_is_done(
    tiny_model_dir, tmp_path, monkeypatch
):
    from test_lm_eval import request

    from ripplebench.harness.lm_model import EditingLM

    monkeypatch.setenv("RIPPLEBENCH_CACHE", str(tmp_path))
    folder = tmp_path / "journals"
    requests = [request({"edit_id": f"e{i % 2}", "fact": f"Fact {i % 2}."}, f"q{i}?", i) for i in range(4)]
    lm = EditingLM(model=str(tiny_model_dir), editor="prepend", batch_size=2)
    seen: list[Path] = []
    apply = lm.editor.apply
    monkeypatch.setattr(lm.editor, "apply", lambda *a: seen.extend(folder.glob("*.jsonl")) or apply(*a))
    lm.generate_until(requests, disable_tqdm=True)
    assert seen  # journaled while the edit groups were answered (a killed run resumes from it) ...
    assert not list(folder.glob("*.jsonl"))  # ... and removed once done: a finished run is not replayed
    assert lm.journals[0]["answered_groups"] == 2


def test_a_cache_journal_another_run_holds_is_left_to_it_but_a_journal_dir_is_not(
    tiny_model_dir, tmp_path, monkeypatch, caplog
):
    from test_lm_eval import request

    import ripplebench.harness.task_journal as task_journal
    from ripplebench.harness.lm_model import EditingLM

    def busy(*args, **kwargs):
        raise Busy("Journal j is in use by another process")

    monkeypatch.setenv("RIPPLEBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(task_journal, "EditJournal", busy)
    requests = [request({"edit_id": "e", "fact": "Fact."}, "q?")]
    lm = EditingLM(model=str(tiny_model_dir), editor="prepend")
    assert len(lm.generate_until(requests, disable_tqdm=True)) == 1 and lm.journals == []
    assert "task controlled_ripple_id runs without a journal" in caplog.text
    with pytest.raises(Busy):
        EditingLM(model=str(tiny_model_dir), editor="prepend", journal=str(tmp_path)).generate_until(requests)


def test_the_editing_model_reuses_journaled_groups_unless_resume_is_false(tiny_model_dir, tmp_path, monkeypatch):
    from test_lm_eval import request

    from ripplebench.harness.lm_model import EditingLM

    docs = [{"edit_id": f"e{i % 2}", "fact": f"Fact {i % 2}."} for i in range(4)]
    requests = [request(doc, f"q{i}?", i) for i, doc in enumerate(docs)]
    args = f"model={tiny_model_dir},editor=prepend,journal={tmp_path}"
    first = EditingLM.create_from_arg_string(args)
    answers = first.generate_until(requests, disable_tqdm=True)

    again = EditingLM.create_from_arg_string(args)
    monkeypatch.setattr(again.editor, "apply", lambda *a: pytest.fail("a journaled edit was applied again"))
    assert again.generate_until(requests, disable_tqdm=True) == answers
    assert again.get_model_info()["ripplebench"]["journals"][0]["reused_groups"] == 2
    assert again.get_model_info()["ripplebench"]["edit_stats"]["edit_groups"] == 2
    monkeypatch.undo()

    fresh = EditingLM.create_from_arg_string(args + ",resume=false")
    assert fresh.generate_until(requests, disable_tqdm=True) == answers
    assert fresh.journals[0]["reused_groups"] == 0 and fresh.journals[0]["answered_groups"] == 2
    with pytest.raises(ValueError, match=r"model_args resume must be true or false, not 'maybe'"):
        EditingLM.create_from_arg_string(args + ",resume=maybe")
