"""Exact match as the paper defines it (section 4.1, after Cohen et al. 2024)."""

from __future__ import annotations

from typing import Iterable


def _normalise(text: str, ignore_case: bool) -> str:
    text = " ".join(text.split())
    return text.lower() if ignore_case else text


def exact_match(question: str, prediction: str, answers: Iterable[str], ignore_case: bool = False) -> float:
    """1.0 if any gold answer is a substring of the question followed by the prediction.

    Case matters, as in the authors' evaluation code: ignoring it lets short answers such as
    the code "AM" match inside words ("Bram"). Runs of whitespace are ignored and blank
    answers never match. As the paper warns (Table 28), an answer that already occurs in the
    question counts as correct.
    """
    haystack = _normalise(f"{question} {prediction}", ignore_case)
    golds = (_normalise(answer, ignore_case) for answer in answers)
    return float(any(gold and gold in haystack for gold in golds))
