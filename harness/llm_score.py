"""LLM-Score inside lm-eval tasks.

A task puts `JudgeFilter` after `take_first` in its filter pipeline. lm-eval hands a filter every
answer of the task at once, so the filter judges them all in one batched, concurrent, cached pass
and returns each answer as a `ScoredAnswer`: the same text (exact match is unchanged) carrying its
LLM-Score. The task's `process_results` adds `llm_metrics(...)`: `llm_<metric>` next to each
exact-match metric, aggregated with lm-eval's `mean`, so the tables show lm-eval's usual standard
error for LLM-Score too. Answers the judge could not score are left out of the llm_* metrics and
counted in the log; without a configured judge there are no llm_* rows and the log says so.

Answers saved after the fact are judged by `rescore` (`ripplebench judge`).

Judge settings come from RIPPLEBENCH_JUDGE_* environment variables and from lm-eval's
`--metadata` / `--model_args` (`judge_<setting>`), which reach the task's dataset loader; the
loader passes them to `use_task_metadata`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from lm_eval.api.filter import Filter

from ripplebench.core.io import write_jsonl
from ripplebench.harness.documents import ANSWERS_FIELD, QUESTION_FIELD
from ripplebench.harness.judge import ENV_PREFIX, METADATA_PREFIX, Judge, JudgeError, JudgeItem, JudgeSettings

# A child of lm-eval's logger, so these lines appear in lm_eval's output with its own.
log = logging.getLogger("lm_eval.ripplebench.llm_score")

LLM_PREFIX = "llm_"
_task_metadata: dict[str, Any] = {}


def use_task_metadata(metadata: Mapping[str, Any]) -> None:
    """Take the judge_* settings from a task's lm-eval metadata; check them before any generation."""
    _task_metadata.clear()
    _task_metadata.update({key: value for key, value in metadata.items() if key.startswith(METADATA_PREFIX)})
    settings = judge_settings()
    if settings is not None:
        Judge(settings).close()  # fails now, naming the problem, on a bad template or cache folder


def judge_settings() -> JudgeSettings | None:
    """The configured judge (task metadata over environment), or None."""
    return JudgeSettings.resolve(_task_metadata)


class ScoredAnswer(str):
    """A generated answer that also carries its LLM-Score (None: the judge could not score it)."""

    llm_score: float | None

    def __new__(cls, text: str, llm_score: float | None) -> "ScoredAnswer":
        answer = super().__new__(cls, text)
        answer.llm_score = llm_score
        return answer

    def __reduce__(self) -> tuple:  # keeps the score when lm-eval gathers results across ranks
        return (ScoredAnswer, (str(self), self.llm_score))


class JudgeFilter(Filter):
    """lm-eval filter: judges all answers of a task; returns them as `ScoredAnswer`s.

    Place it after `take_first`. `question_field` and `answers_field` name the document fields
    holding the question and the list of valid answers.
    """

    def __init__(self, question_field: str = QUESTION_FIELD, answers_field: str = ANSWERS_FIELD, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.question_field = question_field
        self.answers_field = answers_field

    def apply(self, resps: Iterable[str], docs: Sequence[dict]) -> list[str]:
        resps = list(resps)  # take_first hands over an iterator
        settings = judge_settings()
        if settings is None:
            log.warning(
                "LLM-Score was not computed: no judge is configured (set %sMODEL, or judge_model in "
                "--metadata); only exact match is reported.",
                ENV_PREFIX,
            )
            return resps
        items = [judge_item(doc, answer, self.question_field, self.answers_field) for doc, answer in zip(docs, resps)]
        judge = Judge(settings)
        try:
            scores, report = judge.score(items)
        except JudgeError as error:
            saved = save_unjudged(settings, docs, resps)
            raise JudgeError(
                f"{error} LLM-Score was not computed. The {len(items)} generated answers of this task are "
                f"saved in {saved}; once the judge is up, `ripplebench judge {saved}` scores them (judgements "
                "already made are cached), or rerun this evaluation."
            ) from None
        finally:
            judge.close()
        log.info("LLM judge %s at %s: %s.", settings.model, settings.endpoint, report.summary())
        if report.unscorable:
            log.warning(
                "%d of %d answers got no parseable score from the judge and are left out of the llm_* "
                "metrics (first: %r).",
                len(report.unscorable),
                len(items),
                report.unscorable[0].prediction,
            )
        return [ScoredAnswer(answer, score) for answer, score in zip(resps, scores)]


def judge_item(
    doc: Mapping[str, Any], answer: str, question_field: str = QUESTION_FIELD, answers_field: str = ANSWERS_FIELD
) -> JudgeItem:
    """The judge item of one document and its generated answer."""
    try:
        question, answers = doc[question_field], doc[answers_field]
    except KeyError as missing:
        raise ValueError(f"Document has no field {missing} to judge; fields: {', '.join(doc)}.") from None
    answers = [answers] if isinstance(answers, str) else answers
    return JudgeItem(str(question), tuple(str(answer) for answer in answers), str(answer))


def llm_metrics(metrics: Mapping[str, float], answer: str) -> dict[str, float]:
    """`llm_<name>` for each exact-match metric from the answer's LLM-Score.

    Empty when the answer was not judged (no judge configured) or could not be scored.
    """
    return llm_values(metrics, getattr(answer, "llm_score", None))


def llm_values(names: Iterable[str], score: float | None) -> dict[str, float]:
    """`llm_<name>` = `score` for each name that is not an llm_ metric already; empty when `score` is None."""
    if score is None:
        return {}
    return {LLM_PREFIX + name: score for name in names if not name.startswith(LLM_PREFIX)}


def save_unjudged(settings: JudgeSettings, docs: Sequence[dict], answers: Sequence[str]) -> Path:
    """Write documents and answers in lm-eval's sample-log shape, for `ripplebench judge`."""
    folder = Path(settings.cache_dir) / "unjudged"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"unjudged_{datetime.now().strftime('%Y-%m-%dT%H-%M-%S.%f')}.jsonl"
    pairs = enumerate(zip(docs, answers))
    write_jsonl(
        path, ({"doc_id": number, "doc": doc, "filtered_resps": [str(answer)]} for number, (doc, answer) in pairs)
    )
    return path
