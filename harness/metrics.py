"""Exact match as the paper defines it (section 4.1, after Cohen et al. 2024)."""

from __future__ import annotations

from typing import Iterable


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def exact_match(question: str, prediction: str, answers: Iterable[str]) -> float:
    """1.0 if any gold answer is a substring of the question followed by the prediction.

    Comparison ignores case and runs of whitespace; blank answers never match. As the paper
    warns (Table 28), an answer that already occurs in the question counts as correct.
    """
    haystack = _normalise(f"{question} {prediction}")
    return float(any(gold and gold in haystack for gold in map(_normalise, answers)))
