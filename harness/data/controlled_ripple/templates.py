"""Controlled RippleEdit's text: the story templates (Table 8) and the fake subjects' name parts.

A story template per entity type and kind of subject (person/company) has a story with three
entity placeholders and one slot per entity: its description (for efficacy questions), the
atomic fact prompt (Table 7) and a paraphrase. `template_problems` says what a template lacks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ripplebench.core.knowledge_base import read_yaml

STORY_TEMPLATES = Path(__file__).parent / "story_templates.yaml"
NAME_LISTS = Path(__file__).parent / "names.yaml"
SUBJECT_KINDS = ("person", "company")
PRONOUNS = {"male": ("he", "him", "his"), "female": ("she", "her", "her"), "company": ("it", "it", "its")}
SLOT_FIELDS = ("description", "atomic", "paraphrase")


@dataclass(frozen=True)
class Subject:
    """A fake subject: its name, kind (person/company) and pronoun set (male/female/company)."""

    name: str
    kind: str
    gender: str

    def fill(self, text: str, **entities: str) -> str:
        """Fill a template's subject, pronoun and entity placeholders."""
        subj, obj, possessive = PRONOUNS[self.gender]
        return text.format(
            subject=self.name,
            subject_possessive=self.name + ("'" if self.name.endswith("s") else "'s"),
            gender_subj=subj,
            Gender_subj=subj.capitalize(),
            gender_obj=obj,
            gender_possessive_adj=possessive,
            Gender_possessive_adj=possessive.capitalize(),
            **entities,
        )


def load_story_templates(path: Path = STORY_TEMPLATES) -> dict[str, dict[str, dict[str, Any]]]:
    """Table 8 with slot descriptions, atomic prompts and paraphrases: type -> kind -> template."""
    return read_yaml(path)


def load_name_lists(path: Path = NAME_LISTS) -> dict[str, list[str]]:
    """The name parts of fake subjects: first names by gender, last names, company roots and suffixes."""
    return read_yaml(path)


def template_problems(templates: dict[str, Any], entity_types: list[str]) -> list[str]:
    """Templates that are missing, lack a slot, or do not render for every kind of subject."""
    return [
        f"story template {name}/{kind}{problem}"
        for name in entity_types
        for kind in SUBJECT_KINDS
        for problem in _template_problems((templates.get(name) or {}).get(kind), name, kind)
    ]


def _template_problems(template: Any, name: str, kind: str) -> list[str]:
    if not isinstance(template, dict) or not isinstance(template.get("slots"), list):
        return [": missing (needs 'story' and three 'slots')"]
    slots = template["slots"]
    placeholders = set(re.findall(r"\{(" + name + r"_\d)\}", template.get("story", "")))
    if placeholders != {f"{name}_{i}" for i in (1, 2, 3)} or len(slots) != 3:
        return [f": needs {{{name}_1}}, {{{name}_2}}, {{{name}_3}} and three slots"]
    problems = []
    for number, slot in enumerate(slots, start=1):
        if any(not str(slot.get(field) or "").strip() for field in SLOT_FIELDS):
            problems.append(f" slot {number}: needs {', '.join(SLOT_FIELDS)}")
        elif not slot["description"].startswith("the "):
            problems.append(f" slot {number}: description must start with 'the '")
        elif "{subject}" not in slot["atomic"]:
            problems.append(f" slot {number}: the atomic prompt must name {{subject}} (MEMIT needs it)")
    texts = [template["story"], *(slot[field] for slot in slots for field in SLOT_FIELDS if field in slot)]
    for gender in ("male", "female") if kind == "person" else ("company",):
        try:
            for text in texts:
                Subject("Test Subject", kind, gender).fill(text, **{f"{name}_{i}": "X" for i in (1, 2, 3)})
        except (KeyError, IndexError, ValueError) as error:
            return problems + [f": unknown placeholder {error}"]
    return problems
