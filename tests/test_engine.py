"""The edit-then-query loop: one apply per edit, answers back in request order, always revert."""

from __future__ import annotations

import pytest

from ripplebench.editors import Edit, EditHandle, Editor
from ripplebench.harness.engine import EditThenQuery, Query, edits_from_doc, group_by_edits
from ripplebench.harness.generation import truncate_at_stops

A = Edit(id="a", fact="A fact.")
B = Edit(id="b", fact="B fact.")
C = Edit(id="c", fact="C fact.")


class RecordingEditor(Editor):
    """Records every apply and revert; its context names the live edit."""

    def __init__(self):
        super().__init__()
        self.events = []

    def apply(self, model, edits):
        self.events.append(("apply", tuple(e.id for e in edits)))
        return EditHandle(tuple(edits), context=f"[{edits[0].id}] ")

    def revert(self, handle):
        self.events.append(("revert", tuple(e.id for e in handle.edits)))


class FailingEditor(RecordingEditor):
    def apply(self, model, edits):
        super().apply(model, edits)
        return EditHandle(tuple(edits), context=None)  # rendering the prompt will fail


def interleaved_queries() -> list[Query]:
    order = [A, B, A, C, B, A]
    return [Query(edits=(edit,), question=f"question {i}?") for i, edit in enumerate(order)]


def test_queries_are_grouped_by_edit_in_order_of_first_appearance():
    groups = group_by_edits(interleaved_queries())
    assert [edits[0].id for edits in groups] == ["a", "b", "c"]
    assert list(groups.values()) == [[0, 2, 5], [1, 4], [3]]


def test_each_edit_is_applied_once_and_reverted_before_the_next(tiny):
    editor = RecordingEditor()
    answers = EditThenQuery(tiny, editor, "raw", batch_size=4).run(interleaved_queries(), progress=False)
    assert editor.events == [
        ("apply", ("a",)), ("revert", ("a",)),
        ("apply", ("b",)), ("revert", ("b",)),
        ("apply", ("c",)), ("revert", ("c",)),
    ]
    assert len(answers) == 6 and all(isinstance(answer, str) for answer in answers)


def test_answers_come_back_in_request_order(tiny, monkeypatch):
    import ripplebench.harness.engine as engine

    monkeypatch.setattr(engine, "greedy_generate", lambda model, tok, prompts, **kw: list(prompts))
    answers = EditThenQuery(tiny, RecordingEditor(), "raw").run(interleaved_queries(), progress=False)
    assert answers == [
        "[a] question 0?", "[b] question 1?", "[a] question 2?",
        "[c] question 3?", "[b] question 4?", "[a] question 5?",
    ]


def test_the_model_is_reverted_even_when_answering_fails(tiny):
    editor = FailingEditor()
    with pytest.raises(TypeError):
        EditThenQuery(tiny, editor, "raw").run([Query(edits=(A,), question="q?")], progress=False)
    assert editor.events == [("apply", ("a",)), ("revert", ("a",))]


def test_a_document_without_an_edit_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"Document 7 of task 'x' carries no edit"):
        edits_from_doc({"question": "q?"}, "Document 7 of task 'x'")
    with pytest.raises(ValueError, match="carries no edit"):
        edits_from_doc({"edit_id": "e", "fact": "  "}, "Document 1")


def test_documents_may_carry_several_edits():
    doc = {"edits": [{"edit_id": "a", "fact": "A fact."}, {"edit_id": "b", "fact": "B fact."}]}
    assert edits_from_doc(doc, "doc") == (A, B)


def test_generation_is_cut_at_the_first_stop_sequence():
    assert truncate_at_stops(" Paris.\nQ: next", ["\n", "Q:"]) == " Paris."
    assert truncate_at_stops("no stop here", ["\n"]) == "no stop here"
