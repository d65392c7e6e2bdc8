"""Controlled RippleEdit (PropMEND paper, section 5 and Appendix E): generate every split.

An instance is a short story (Table 8) about a fake subject, a person or a company, involving
three real entities of one type; its questions ask relations (Table 10) of those entities, once
through the story (`alias_question`, efficacy: "the country where Mira Santos was born") and
once directly (`unalias_question`, specificity). Answers come from the knowledge base
(`ripplebench.core.knowledge_base`). Sampling follows Appendix E.1: an entity type weighted by
its number of entities, three distinct entities of it, a story template, and for each relation
of the type the entity the question is about. Generation is deterministic in the seed.

The split table is `splits`, the checks of a generation `split_checks`, its files `write`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Iterator

from ripplebench.core.knowledge_base import Entity, KnowledgeBase, Relation, entity_id, relation_id
from ripplebench.harness.data.controlled_ripple.splits import SPLITS, SplitSpec
from ripplebench.harness.data.controlled_ripple.templates import (
    NAME_LISTS,
    SUBJECT_KINDS,
    Subject,
    load_name_lists,
    load_story_templates,
    template_problems,
)


def reserved_words(kb: KnowledgeBase) -> set[str]:
    """Every word (3+ letters) of every entity name and answer in the knowledge base."""
    texts = [text for t in kb.values() for e in t.entities for text in (e.name, *sum(e.facts.values(), ()))]
    return {word.casefold() for text in texts for word in re.findall(r"\w{3,}", text)}


def fake_subjects(names: dict[str, list[str]], kb: KnowledgeBase) -> tuple[list[Subject], list[Subject]]:
    """All fake persons and companies whose name shares no word with a real entity or answer."""
    reserved = reserved_words(kb)

    def allowed(parts: list[str]) -> list[str]:
        return [part for part in parts if not {w.casefold() for w in re.findall(r"\w{3,}", part)} & reserved]

    persons = [
        Subject(f"{first} {last}", "person", gender)
        for gender, key in (("female", "female_first"), ("male", "male_first"))
        for first in allowed(names[key])
        for last in allowed(names["last_name"])
    ]
    companies = [
        Subject(f"{root} {suffix}", "company", "company")
        for root in allowed(names["company_root"])
        for suffix in allowed(names["company_suffix"])
    ]
    return persons, companies


@dataclass(frozen=True)
class Draw:
    """The random choices behind one instance, before names and templates are filled in."""

    entity_type: str
    subject_kind: str
    entities: tuple[Entity, Entity, Entity]
    questions: tuple[tuple[Relation, int], ...]  # (relation, index of the entity it asks about)


def type_weights(kb: KnowledgeBase, spec: SplitSpec) -> dict[str, int]:
    """Entity types a split can draw from, weighted by their number of entities in its domain.

    A type needs three distinct entities and at least one relation in the split's domains; so
    Person has no out-of-domain-relation instances (it has no such relation) and Organization no
    out-of-domain-entity ones (Table 9 lists a single out-of-domain organization).
    """
    weights = {}
    for name, entity_type in kb.items():
        entities = len(entity_type.entities_in(spec.entity_domain))
        if entities >= 3 and entity_type.relations_in(spec.relation_domain):
            weights[name] = entities
    return weights


def draw_instance(rng: random.Random, kb: KnowledgeBase, spec: SplitSpec, weights: dict[str, int]) -> Draw:
    """Appendix E.1 steps 1-3: a type, three distinct entities of it, and each relation's entity."""
    name = rng.choices(list(weights), weights=list(weights.values()))[0]
    entity_type = kb[name]
    entities = tuple(rng.sample(entity_type.entities_in(spec.entity_domain), 3))
    kind = rng.choice(SUBJECT_KINDS)
    questions = tuple((relation, rng.randrange(3)) for relation in entity_type.relations_in(spec.relation_domain))
    return Draw(name, kind, entities, questions)  # type: ignore[arg-type]


def build_instance(draw: Draw, subject: Subject, template: dict[str, Any], instance_id: str) -> dict[str, Any]:
    """Appendix E.1 step 4: fill the story, the atomic facts (Table 7) and the questions."""
    kind = draw.entity_type
    slots = template["slots"]
    mentions = {f"{kind}_{number}": entity.name for number, entity in enumerate(draw.entities, start=1)}
    questions = []
    for relation, index in draw.questions:
        entity = draw.entities[index]
        answers = entity.facts[relation.id]
        questions.append(
            {
                "alias_question": relation.ask(kind, subject.fill(slots[index]["description"])),
                "unalias_question": relation.ask(kind, entity.name),
                "answer": answers[0],
                "answer_aliases": list(answers[1:]),
                "entity_id": entity_id(kind, entity.name),
                "relation_id": relation_id(kind, relation.id),
            }
        )
    return {
        "id": instance_id,
        "entity_type": kind,
        "subject": subject.name,
        "subject_type": subject.kind,
        "text": subject.fill(template["story"], **mentions),
        "entity_ids": [entity_id(kind, entity.name) for entity in draw.entities],
        "atomic_facts": [
            {
                "prompt": subject.fill(slot["atomic"]),
                "target": entity.name,
                "subject": subject.name,
                "paraphrase": subject.fill(slot["paraphrase"]),
            }
            for slot, entity in zip(slots, draw.entities)
        ],
        "questions": questions,
    }


def generate(
    kb: KnowledgeBase,
    seed: int = 0,
    templates: dict[str, Any] | None = None,
    names: dict[str, list[str]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Every split of SPLITS, deterministic in `seed`; each split draws from its own random stream
    and every instance of every split has a different fake subject."""
    templates = templates if templates is not None else load_story_templates()
    problems = template_problems(templates, list(kb))
    if problems:
        raise ValueError("Story templates are incomplete:\n  " + "\n  ".join(problems))
    persons, companies = fake_subjects(names if names is not None else load_name_lists(), kb)
    random.Random(f"controlled-ripple/{seed}/names").shuffle(persons)
    random.Random(f"controlled-ripple/{seed}/names").shuffle(companies)
    pools: dict[str, Iterator[Subject]] = {"person": iter(persons), "company": iter(companies)}
    splits = {}
    for split, spec in SPLITS.items():
        weights = type_weights(kb, spec)
        if not weights:
            raise ValueError(
                f"No entity type can fill split {split} ({spec.entity_domain}-domain entities, "
                f"{spec.relation_domain}-domain relations) from types {', '.join(kb)}."
            )
        rng = random.Random(f"controlled-ripple/{seed}/{split}")
        instances = []
        for number in range(1, spec.size + 1):
            draw = draw_instance(rng, kb, spec, weights)
            subject = next(pools[draw.subject_kind], None)
            if subject is None:
                raise ValueError(f"Ran out of fake {draw.subject_kind} names in {NAME_LISTS.name}: add names.")
            template = templates[draw.entity_type][draw.subject_kind]
            instances.append(build_instance(draw, subject, template, f"{split}-{number:04d}"))
        splits[split] = instances
    return splits
