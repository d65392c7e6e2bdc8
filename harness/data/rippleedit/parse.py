"""RippleEdit (Cohen et al. 2024): read the official files and label their queries.

The benchmark ships three JSON files, `popular.json`, `random.json` and `recent.json` (MIT
licence, github.com/edenbiran/RippleEdits, data/benchmark/). Each is a list of edits: `edit`
(`prompt` is the fact sentence, plus `subject_id`, `relation`, `target_id` and, for popular and
random, `original_fact`) and six criteria, each a list of tests whose `test_queries` hold a
`prompt` and `answers` (`value` + `aliases` per answer object).

What is computed, following PropMEND (section 4.1, Appendix D):

- every test query becomes one question labelled by propagation type (efficacy: LG, CI, CII,
  SA; specificity: RS, FN) and as verbatim when a valid answer occurs in the edit sentence;
- queries without a non-blank answer value are dropped (and counted);
- the union of the three files is split with a seeded shuffle (`splits`).

Condition queries and `test_condition` drive the original pre-edit filtering, which PropMEND
does not apply (footnote 1: every method sees the same questions); they are read but unused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from ripplebench.harness.data.rippleedit.records import CRITERIA, RippleEdit, RippleQuery

SUBSETS = ("popular", "random", "recent")

# How the benchmark phrases a fact of each relation ("{}" is the subject); the edit sentence is
# the phrase followed by " <target>.". Used only to cut the (prompt, target, subject) triple that
# MEMIT/MEND-style editors need out of the sentence.
RELATION_PHRASES = {
    "MOTHER": "The name of the mother of {} is",
    "FATHER": "The name of the father of {} is",
    "BROTHER": "The name of the brother of {} is",
    "SISTER": "The name of the sister of {} is",
    "SIBLING": "The names of the siblings of {} are",
    "SPOUSE": "The name of the spouse of {} is",
    "UNCLE": "The name of the uncle of {} is",
    "AUNT": "The name of the aunt of {} is",
    "CHILD": "The name of the child of {} is",
    "NUMBER_OF_CHILDREN": "The number of children {} has is",
    "SEX_OR_GENDER": "The gender of {} is",
    "PLACE_OF_BIRTH": "The place of birth of {} is",
    "PLACE_OF_DEATH": "The place of death of {} is",
    "PLACE_OF_BURIAL": "The place of burial of {} is",
    "COUNTRY": "The name of the country which {} is associated with is",
    "COUNTRY_OF_CITIZENSHIP": "The name of the country of citizenship of {} is",
    "POSITION_HELD": "The name of the position held by {} is",
    "STEPFATHER": "The name of the stepfather of {} is",
    "STEPMOTHER": "The name of the stepmother of {} is",
    "MEMBER_OF_SPORTS_TEAM": "The name of the sports team which {} is a member of is",
    "ALMA_MATER": "The name of the alma mater of {} is",
    "SEXUAL_ORIENTATION": "The sexual orientation of {} is",
    "OCCUPATION": "The occupation of {} is",
    "EMPLOYER": "The name of the employer of {} is",
    "LEAGUE": "The name of the league which {} plays in is",
    "FIELD_OF_WORK": "The name of the field of work of {} is",
    "NATIVE_LANGUAGE": "The mother tongue of {} is",
    "AWARD_RECEIVED": "The name of the award {} won is",
    "FOLLOWS": "{} follows",
    "FOLLOWED_BY": "{} is followed by",
    "ETHNIC_GROUP": "The name of the ethnic group which {} is associated with is",
    "RELIGION": "The name of the religion which {} is associated with is",
    "EYE_COLOR": "The eye color of {} is",
    "DATE_OF_BIRTH": "The date of birth of {} is",
    "DATE_OF_DEATH": "The date of death of {} is",
    "HEAD_OF_GOVERNMENT": "The name of the head of government of {} is",
    "HEAD_OF_STATE": "The name of the head of state of {} is",
    "CONTINENT": "The name of the continent which {} is part of is",
    "CAPITAL": "The name of the capital city of {} is",
    "CURRENCY": "The name of the currency in {} is",
    "OFFICIAL_LANGUAGE": "The official language of {} is",
    "ANTHEM": "The name of the anthem of {} is",
    "LIKELY_ANTHEM": "The name of the anthem that is most likely to be performed in {} is",
    "CAPITAL_OF": "The name of the country which {} is the capital of is",
    "AUTHOR": "The name of the author of {} is",
    "EDITOR": "The name of the editor of {} is",
    "DIRECTOR": "The name of the director of {} is",
    "SCREENWRITER": "The name of the screenwriter of {} is",
    "CAST_MEMBER": "The names of the cast members of {} are",
    "ARCHITECT": "The name of the architect of {} is",
    "COMPOSER": "The name of the composer of {} is",
    "FOUNDER": "The name of the founder of {} is",
}


def _normalise(text: str) -> str:
    """Lower case with runs of whitespace collapsed: the comparison the EM metric uses."""
    return " ".join(text.lower().split())


def valid_answers(query: Mapping[str, Any]) -> tuple[str, ...]:
    """The strings that count as a correct answer to an official test query.

    As PropMEND: an answer object counts only if its `value` is not blank, and then its value
    and aliases are all valid. As the official RippleEdits code: blank strings and
    one-character non-numeric strings are discarded (a one-letter alias such as "M" would
    otherwise match almost any text under case-insensitive substring matching).
    """
    answers: list[str] = []
    for answer in query.get("answers") or ():
        value = "" if answer.get("value") is None else str(answer["value"])
        if not value.strip():
            continue
        for text in (value, *(str(alias) for alias in answer.get("aliases") or ())):
            text = text.strip()
            if (len(text) > 1 or text.isdigit()) and text not in answers:
                answers.append(text)
    return tuple(answers)


def is_verbatim(fact: str, answers: Iterable[str]) -> bool:
    """True when any answer occurs in the fact sentence, ignoring case and whitespace runs."""
    haystack = _normalise(fact)
    return any(_normalise(answer) in haystack for answer in answers)


def atomic_fact(fact: str, relation: str) -> dict[str, str] | None:
    """The (prompt, target, subject) triple of an edit sentence, or None if it cannot be cut."""
    phrase = RELATION_PHRASES.get(relation)
    if phrase is None:
        return None
    prefix, suffix = (re.escape(part) for part in phrase.split("{}"))
    match = re.fullmatch(rf"({prefix}(?P<subject>.+?){suffix}) (?P<target>.+?)\.?", fact.strip())
    if match is None:
        return None
    return {"prompt": match.group(1), "target": match.group("target"), "subject": match.group("subject")}


def parse_entry(entry: Any, edit_id: str, subset: str, where: str) -> RippleEdit:
    """One official entry as a RippleEdit; `where` names the entry in errors."""
    if not isinstance(entry, dict) or not isinstance(entry.get("edit"), dict):
        raise ValueError(f"{where}: not a RippleEdits entry (no 'edit' object).")
    fact = str(entry["edit"].get("prompt") or "").strip()
    if not fact:
        raise ValueError(f"{where}: the edit has no 'prompt' (the fact sentence).")
    missing = [name for name in CRITERIA if not isinstance(entry.get(name), list)]
    if missing:
        raise ValueError(
            f"{where}: missing criteria {', '.join(missing)}; an entry needs all of {', '.join(CRITERIA)}."
        )
    queries: list[RippleQuery] = []
    dropped = 0
    for criterion, query_type in CRITERIA.items():
        for test in entry[criterion]:
            if not isinstance(test, dict):
                raise ValueError(f"{where}: {criterion} holds a {type(test).__name__}, not a test object.")
            for query in test.get("test_queries") or ():
                answers = valid_answers(query)
                if not answers or not str(query.get("prompt") or "").strip():
                    dropped += 1
                    continue
                queries.append(RippleQuery(query["prompt"].strip(), answers, query_type, is_verbatim(fact, answers)))
    relation = str(entry["edit"].get("relation") or "")
    triple = atomic_fact(fact, relation)
    return RippleEdit(edit_id, subset, fact, relation, (triple,) if triple else (), tuple(queries), dropped)


def read_subset(path: str | Path, subset: str) -> list[RippleEdit]:
    """Read one official file; edit ids are `<subset>-<position in the file>`."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}).") from None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of edits, found {type(entries).__name__}.")
    return [parse_entry(entry, f"{subset}-{i}", subset, f"{path}, entry {i}") for i, entry in enumerate(entries)]
