"""Oracle augmentations for Meta-Aug CPT, from the Controlled RippleEdit knowledge base.

The knowledge base (`harness/data/controlled_ripple_kb/*.yaml`, one file per entity type)
lists each type's relations with their question templates and whether they are in-domain,
and each entity's gold answers. The story templates of Controlled RippleEdit insert entity
names verbatim, so the real entities of a fact are found by matching KB names in its text.

An augmentation is one in-domain relation question about a found entity followed by its gold
canonical answer, as one line of text: "What is the capital of Kenya? Nairobi." (question,
a space, the answer, a full stop unless the answer already ends in punctuation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import yaml

DEFAULT_KB_DIR = Path(__file__).resolve().parent.parent / "harness" / "data" / "controlled_ripple_kb"


@dataclass(frozen=True)
class Relation:
    id: str
    template: str  # with a placeholder named after the entity type, e.g. "{country}"
    domain: str  # "in" or "out"


@dataclass(frozen=True)
class Entity:
    name: str
    entity_type: str
    facts: Mapping[str, tuple[str, ...]]  # relation id -> accepted answers, canonical first


@dataclass(frozen=True)
class KnowledgeBase:
    relations: Mapping[str, tuple[Relation, ...]]  # entity type -> its relations
    entities: tuple[Entity, ...]

    def question(self, entity: Entity, relation: Relation) -> str:
        return relation.template.replace("{" + entity.entity_type + "}", entity.name)


def load_knowledge_base(folder: str | Path = DEFAULT_KB_DIR) -> KnowledgeBase:
    """Read every `<entity type>.yaml` of a knowledge-base folder."""
    folder = Path(folder)
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ValueError(
            f"No knowledge-base files (*.yaml) in '{folder}'. Point the editor's kb_dir to the "
            "folder holding the Controlled RippleEdit entity files (person.yaml, country.yaml, ...)."
        )
    relations: dict[str, tuple[Relation, ...]] = {}
    entities: list[Entity] = []
    for path in files:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        kind = data.get("entity_type") or path.stem
        relations[kind] = tuple(
            Relation(key, value["template"], value.get("domain", "in"))
            for key, value in (data.get("relations") or {}).items()
        )
        for record in data.get("entities") or ():
            facts = {key: tuple(str(a) for a in answers) for key, answers in (record.get("facts") or {}).items()}
            entities.append(Entity(str(record["name"]), kind, facts))
    return KnowledgeBase(relations, tuple(entities))


def entities_in(text: str, kb: KnowledgeBase) -> list[Entity]:
    """KB entities named in `text`, in order of appearance.

    Names match as whole words; a longer name wins over one inside it ("Korean War" over
    "Korean"), and each entity is listed once.
    """
    taken: list[tuple[int, int]] = []
    found: list[tuple[int, Entity]] = []
    for entity in sorted(kb.entities, key=lambda e: len(e.name), reverse=True):
        for match in re.finditer(rf"(?<!\w){re.escape(entity.name)}(?!\w)", text):
            if any(start < match.end() and match.start() < end for start, end in taken):
                continue
            taken.append(match.span())
            found.append((match.start(), entity))
            break
    return [entity for _, entity in sorted(found, key=lambda item: item[0])]


def qa_text(question: str, answer: str) -> str:
    """A question and its answer as one line of training text."""
    end = "" if answer[-1:] in ".!?" else "."
    return f"{question} {answer}{end}"


def in_domain_augmentations(text: str, kb: KnowledgeBase, where: str) -> list[str]:
    """Gold QA lines for every in-domain relation of every KB entity named in `text`.

    `where` names the fact in the error raised when no entity is found.
    """
    entities = entities_in(text, kb)
    if not entities:
        raise ValueError(
            f"{where}: no knowledge-base entity is named in the fact {text!r}, so Meta-Aug CPT "
            "has nothing to augment it with (it needs Controlled RippleEdit facts and the KB)."
        )
    lines = []
    for entity in entities:
        for relation in kb.relations.get(entity.entity_type, ()):
            answers = entity.facts.get(relation.id)
            if relation.domain == "in" and answers:
                lines.append(qa_text(kb.question(entity, relation), answers[0]))
    return lines


def augment_facts(facts: Sequence[tuple[str, str]], kb: KnowledgeBase) -> list[str]:
    """For each (edit id, fact): the fact, then its in-domain gold QA lines."""
    texts = []
    for edit_id, fact in facts:
        texts.append(fact)
        texts.extend(in_domain_augmentations(fact, kb, f"Edit '{edit_id}'"))
    return texts
