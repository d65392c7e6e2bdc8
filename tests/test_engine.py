"""The edit-then-query loop: one apply per edit, answers back in request order, always revert."""

from __future__ import annotations

import pytest

from ripplebench.editors import Edit, EditHandle, Editor
from ripplebench.harness.backends import Backend, truncate_at_stops
from ripplebench.harness.documents import edits_from_doc
from ripplebench.harness.engine import EditThenQuery, Query, group_by_edits

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


class EchoBackend(Backend):
    """Answers each prompt with `transform(prompt)`, recording every decode call and hook."""

    def __init__(self, transform=lambda prompt: prompt, events=None):
        self.transform = transform
        self.calls = []
        self.events = [] if events is None else events

    @classmethod
    def start(cls, model, settings, *, folder, dtype, batch_size):
        return cls()

    def decode(self, prompts, *, max_new_tokens, stops, add_special_tokens):
        self.calls.append(list(prompts))
        return [self.transform(prompt) for prompt in prompts]

    def after_apply(self, handle):
        self.events.append(("after_apply", tuple(e.id for e in handle.edits)))

    def before_revert(self, handle):
        self.events.append(("before_revert", tuple(e.id for e in handle.edits)))


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
        ("apply", ("a",)),
        ("revert", ("a",)),
        ("apply", ("b",)),
        ("revert", ("b",)),
        ("apply", ("c",)),
        ("revert", ("c",)),
    ]
    assert len(answers) == 6 and all(isinstance(answer, str) for answer in answers)


def test_answers_come_back_in_request_order(tiny):
    answers = EditThenQuery(tiny, RecordingEditor(), "raw", backend=EchoBackend()).run(
        interleaved_queries(), progress=False
    )
    assert answers == [
        "[a] question 0?",
        "[b] question 1?",
        "[a] question 2?",
        "[c] question 3?",
        "[b] question 4?",
        "[a] question 5?",
    ]


def test_the_model_is_reverted_even_when_answering_fails(tiny):
    editor = FailingEditor()
    with pytest.raises(TypeError):
        EditThenQuery(tiny, editor, "raw").run([Query(edits=(A,), question="q?")], progress=False)
    assert editor.events == [("apply", ("a",)), ("revert", ("a",))]


@pytest.mark.parametrize("changes_weights", [True, False])
def test_the_backend_hears_of_every_apply_and_revert(tiny, changes_weights):
    editor = RecordingEditor()
    editor.changes_weights = changes_weights
    EditThenQuery(tiny, editor, "raw", backend=EchoBackend(events=editor.events)).run(
        interleaved_queries(), progress=False
    )
    steps = ("apply", "after_apply", "before_revert", "revert")
    assert editor.events == [(step, (edit,)) for edit in "abc" for step in steps]


def test_a_failing_backend_hook_still_reverts_the_model(tiny):
    class FailingBackend(EchoBackend):
        def after_apply(self, handle):
            raise RuntimeError("push failed")

    editor = RecordingEditor()
    with pytest.raises(RuntimeError, match="push failed"):
        EditThenQuery(tiny, editor, "raw", backend=FailingBackend()).run(
            [Query(edits=(A,), question="q?")], progress=False
        )
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


class ContextEditor(RecordingEditor):
    """An in-context editor: declares that it never changes weights."""

    changes_weights = False


def test_built_in_context_editors_declare_that_they_change_no_weights():
    from ripplebench.editors.registry import build_editor

    assert not build_editor("none").changes_weights and not build_editor("prepend").changes_weights
    assert build_editor("cpt").changes_weights and build_editor("memit").changes_weights


def test_a_context_editor_answers_many_groups_in_one_batched_pass(tiny):
    backend = EchoBackend(str.upper)
    editor = ContextEditor()
    runner = EditThenQuery(tiny, editor, "raw", batch_size=2, backend=backend)
    answers = runner.run(interleaved_queries(), progress=False)
    assert len(backend.calls) == 1 and len(backend.calls[0]) == 6  # three groups, one decoding pass
    assert answers[3] == "[C] QUESTION 3?" and answers[4] == "[B] QUESTION 4?"
    # apply builds the context and is reverted at once: never two handles alive
    assert editor.events == [(kind, (edit,)) for edit in "abc" for kind in ("apply", "revert")]
    assert [stats["groups_per_batch_window"] for stats in runner.edit_stats] == [3, 3, 3]
    shares = [stats["answer_seconds"] for stats in runner.edit_stats]
    assert shares[0] == pytest.approx(3 * shares[2])  # group a asked 3 questions, c one


def test_windows_of_groups_each_hold_about_window_batches_of_questions(tiny, monkeypatch):
    monkeypatch.setattr(EditThenQuery, "window_batches", 1)
    edits = [Edit(id=str(n), fact=f"Fact {n}.") for n in range(5)]
    queries = [Query(edits=(edit,), question=f"q{n}{k}?") for n, edit in enumerate(edits) for k in range(2)]
    backend = EchoBackend()
    runner = EditThenQuery(tiny, ContextEditor(), "raw", batch_size=3, backend=backend)
    assert runner.run(queries, progress=False) == [f"[{q.edits[0].id}] {q.question}" for q in queries]
    assert [len(call) for call in backend.calls] == [4, 4, 2] and len(runner.edit_stats) == 5


def test_cross_group_batches_give_the_answers_of_per_group_answering(tiny):
    """Length-sorted batches over many groups answer as one-group, one-question-at-a-time decoding."""
    from ripplebench.core.prompts import render_prompt
    from ripplebench.editors.registry import build_editor
    from ripplebench.harness.backends.hf import greedy_generate

    facts = ["Elizabeth Ruiz was born in Kenya.", "Veltrix Dynamics was founded in France.", "Adam was born in Norway."]
    edits = [Edit(id=str(n), fact=fact, subject_type="person") for n, fact in enumerate(facts)]
    questions = ["What is the capital of Malaysia?", "Where was she born?", "What is the currency of Kenya?"]
    queries = [Query(edits=(edit,), question=q, stops=("\n",), max_new_tokens=8) for edit in edits for q in questions]
    editor = build_editor("prepend")
    answers = EditThenQuery(tiny, editor, "chat", batch_size=4).run(queries, progress=False)
    expected = [
        greedy_generate(
            tiny.model,
            tiny.tokenizer,
            [render_prompt("chat", tiny.tokenizer, q.question, editor.apply(tiny, q.edits).context)],
            max_new_tokens=8,
            stops=("\n",),
            batch_size=1,
            add_special_tokens=False,
        )[0]
        for q in queries
    ]
    assert answers == expected


def test_batches_gather_rows_sharing_a_prefix_and_fill_up_otherwise():
    from ripplebench.harness.backends.hf import pad_after_prefix, plan_batches, shared_prefix

    context_a, context_b = list(range(100, 130)), list(range(200, 230))
    rows = [context_b + [1, 2], context_a + [3], context_b + [4], context_a + [5, 6, 7]]
    assert plan_batches(rows, batch_size=16, steps=20) == [[1, 3], [0, 2]]
    short = [[9, n] for n in range(6)]  # rows sharing one token: batches fill up to batch_size
    assert [len(batch) for batch in plan_batches(short, batch_size=4, steps=20)] == [4, 2]
    assert shared_prefix([[1, 2, 3], [1, 2, 4]]) == 2 and shared_prefix([[1, 2], [1, 2]]) == 1
    padded = pad_after_prefix([[1, 2, 3, 4], [1, 2, 5]], 2, pad_id=0)
    assert padded["input_ids"].tolist() == [[1, 2, 3, 4], [1, 2, 0, 5]]
    assert padded["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 1]]
