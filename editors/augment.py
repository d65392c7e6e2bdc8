"""Oracle augmentations for Meta-Aug CPT, from the Controlled RippleEdit knowledge base.

The knowledge base (`harness/data/controlled_ripple/kb/*.yaml`, one file per entity type, read
by `core.knowledge_base`) lists each type's relations with their question
templates and whether they are in-domain, and each entity's gold answers. The story templates
of Controlled RippleEdit insert entity names verbatim, so the real entities of a fact are found
by matching KB names in its text.

An augmentation is one in-domain relation question about a found entity followed by its gold
canonical answer, as one line of text: "What is the capital of Kenya? Nairobi." (question,
a space, the answer, a full stop unless the answer already ends in punctuation).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from ripplebench.core.knowledge_base import ENTITY_TYPES, Entity, EntityType, KnowledgeBase, load_knowledge_base
from ripplebench.core.paths import CONTROLLED_RIPPLE_KB_DIR


def load_kb_folder(folder: str | Path = CONTROLLED_RIPPLE_KB_DIR) -> KnowledgeBase:
    """Every entity-type file (`person.yaml`, `country.yaml`, ...) present in `folder`."""
    folder = Path(folder)
    types = [name for name in ENTITY_TYPES if (folder / f"{name}.yaml").is_file()]
    if not types:
        raise ValueError(
            f"No knowledge-base files in '{folder}'. Point the editor's kb_dir to a folder holding "
            f"Controlled RippleEdit entity files ({', '.join(f'{name}.yaml' for name in ENTITY_TYPES)})."
        )
    return load_knowledge_base(folder, types)


def entities_in(text: str, kb: KnowledgeBase) -> list[tuple[EntityType, Entity]]:
    """KB entities named in `text` (with their type), in order of appearance.

    Names match as whole words; a longer name wins over one inside it ("Korean War" over
    "Korean"), and each entity is listed once.
    """
    candidates = [(kind, entity) for kind in kb.values() for entity in kind.entities]
    taken: list[tuple[int, int]] = []
    found: list[tuple[int, EntityType, Entity]] = []
    for kind, entity in sorted(candidates, key=lambda pair: len(pair[1].name), reverse=True):
        for match in re.finditer(rf"(?<!\w){re.escape(entity.name)}(?!\w)", text):
            if any(start < match.end() and match.start() < end for start, end in taken):
                continue
            taken.append(match.span())
            found.append((match.start(), kind, entity))
            break
    return [(kind, entity) for _, kind, entity in sorted(found, key=lambda item: item[0])]


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
    return [
        qa_text(relation.ask(kind.name, entity.name), entity.facts[relation.id][0])
        for kind, entity in entities
        for relation in kind.relations_in("in")
    ]


def augment_facts(facts: Sequence[tuple[str, str]], kb: KnowledgeBase) -> list[str]:
    """For each (edit id, fact): the fact, then its in-domain gold QA lines."""
    texts = []
    for edit_id, fact in facts:
        texts.append(fact)
        texts.extend(in_domain_augmentations(fact, kb, f"Edit '{edit_id}'"))
    return texts
