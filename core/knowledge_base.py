"""The Controlled RippleEdit knowledge base: its schema and strict loader.

One YAML file per entity type (schema: entity_type, sources, relations {id: {template, domain}},
entities [{name, domain, facts {relation: [answers]}}]), by default in the dataset's folder
(`core.paths.CONTROLLED_RIPPLE_KB_DIR`). `load_knowledge_base` parses it strictly (duplicate keys
are errors, not silent overwrites) and checks that every entity answers every relation of its type.
It lives in `core` because the dataset generator and Meta-Aug CPT's oracle both read it.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from ripplebench.core.paths import CONTROLLED_RIPPLE_KB_DIR

ENTITY_TYPES = ("person", "language", "country", "event", "organization", "species", "creative_work")
DOMAINS = ("in", "out")


class KnowledgeBaseError(ValueError):
    """A knowledge-base file is missing or malformed."""


@dataclass(frozen=True)
class Relation:
    """A relation of an entity type: its question template (Table 10) and domain (in/out)."""

    id: str
    template: str  # Table 10 question, with the entity as {<entity_type>}
    domain: str

    def ask(self, entity_type: str, mention: str) -> str:
        """The relation's question about `mention` (an entity name or a description of it)."""
        return self.template.replace("{" + entity_type + "}", mention)


@dataclass(frozen=True)
class Entity:
    """A real entity with its domain and its answers to every relation of its type."""

    name: str
    domain: str
    facts: dict[str, tuple[str, ...]]  # relation id -> answers, canonical first


@dataclass(frozen=True, eq=False)  # compared and hashed by identity (it holds dicts)
class EntityType:
    """One knowledge-base file: an entity type's relations, entities and answer sources."""

    name: str
    sources: dict[str, str]
    relations: dict[str, Relation]
    entities: tuple[Entity, ...]

    def entities_in(self, domain: str) -> list[Entity]:
        """The type's entities of one domain (in/out), in file order."""
        return [entity for entity in self.entities if entity.domain == domain]

    def relations_in(self, domain: str) -> list[Relation]:
        """The type's relations of one domain (in/out), in file order."""
        return [relation for relation in self.relations.values() if relation.domain == domain]


KnowledgeBase = dict[str, EntityType]


@functools.lru_cache(maxsize=None)
def slug(text: str) -> str:
    """A lowercase ASCII id for a name: "Persian (Farsi)" -> "persian-farsi"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def entity_id(entity_type: str, name: str) -> str:
    """An entity's id: "country:kenya"."""
    return f"{entity_type}:{slug(name)}"


def relation_id(entity_type: str, relation: str) -> str:
    """A relation's id: "country:currency"."""
    return f"{entity_type}:{relation}"


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe loader (libyaml's when available) that rejects duplicate mapping keys instead of
    keeping the last one."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(key_node) for key_node, _ in node.value]
    duplicates = sorted({str(key) for key in keys if keys.count(key) > 1})
    if duplicates:
        raise KnowledgeBaseError(f"line {node.start_mark.line + 1}: duplicated key(s) {', '.join(duplicates)}")
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_yaml(path: Path) -> Any:
    """Parse a YAML data file strictly, naming the file in any error."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except (KnowledgeBaseError, yaml.YAMLError) as error:
        raise KnowledgeBaseError(f"{path}: {error}") from None


def _require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise KnowledgeBaseError(f"{where}: {message}")


def _answers(value: Any, where: str) -> tuple[str, ...]:
    _require(isinstance(value, list) and len(value) > 0, where, "needs a non-empty list of answers")
    answers = tuple(str(item).strip() if isinstance(item, (str, int)) else "" for item in value)
    _require(all(answers), where, f"has an empty or non-text answer in {value!r}")
    folded = [answer.casefold() for answer in answers]
    repeated = sorted({answer for answer in answers if folded.count(answer.casefold()) > 1})
    _require(not repeated, where, f"duplicated answer(s) {repeated}")
    return answers


def load_entity_type(path: Path) -> EntityType:
    """Read and check one knowledge-base file: every entity answers every relation of its type."""
    data = read_yaml(path)
    where = str(path)
    _require(isinstance(data, dict), where, "is not a mapping")
    _require(data.get("entity_type") == path.stem, where, f"entity_type must be '{path.stem}' (the file stem)")
    raw_relations = data.get("relations")
    _require(isinstance(raw_relations, dict) and raw_relations, where, "has no 'relations'")
    relations = {}
    for rid, spec in raw_relations.items():
        at = f"{where}: relation '{rid}'"
        _require(isinstance(spec, dict), at, "needs {template, domain}")
        template = str(spec.get("template") or "")
        _require("{" + path.stem + "}" in template, at, f"template must contain {{{path.stem}}}: {template!r}")
        _require(spec.get("domain") in DOMAINS, at, f"domain must be one of {DOMAINS}")
        relations[rid] = Relation(rid, template, spec["domain"])
    sources = data.get("sources") or {}
    _require(isinstance(sources, dict), where, "'sources' must map relation ids to text")
    unsourced = [rid for rid in relations if not str(sources.get(rid) or "").strip()]
    _require(not unsourced, where, f"no source recorded for relation(s) {', '.join(unsourced)}")
    raw_entities = data.get("entities")
    _require(isinstance(raw_entities, list) and raw_entities, where, "has no 'entities'")
    entities, seen = [], set()
    for number, raw in enumerate(raw_entities):
        name = str((raw or {}).get("name") or "").strip() if isinstance(raw, dict) else ""
        at = f"{where}: entity {number} ({name or 'no name'})"
        _require(bool(name), at, "has no name")
        _require(entity_id(path.stem, name) not in seen, at, "is listed twice")
        seen.add(entity_id(path.stem, name))
        _require(raw.get("domain") in DOMAINS, at, f"domain must be one of {DOMAINS}")
        facts = raw.get("facts")
        _require(isinstance(facts, dict), at, "has no 'facts'")
        unknown = sorted(set(facts) - set(relations))
        _require(not unknown, at, f"answers unknown relation(s) {unknown}; known: {', '.join(relations)}")
        missing = [rid for rid in relations if rid not in facts]
        _require(not missing, at, f"has no answer for relation(s) {', '.join(missing)}")
        answers = {rid: _answers(facts[rid], f"{at} relation '{rid}'") for rid in relations}
        entities.append(Entity(name, raw["domain"], answers))
    return EntityType(path.stem, {k: str(v) for k, v in sources.items()}, relations, tuple(entities))


def load_knowledge_base(kb_dir: Path = CONTROLLED_RIPPLE_KB_DIR, types: Iterable[str] = ENTITY_TYPES) -> KnowledgeBase:
    """Load the knowledge base of the given entity types; a missing file is an error."""
    types = tuple(types)
    unknown = [name for name in types if name not in ENTITY_TYPES]
    if unknown:
        raise KnowledgeBaseError(f"Unknown entity type(s) {', '.join(unknown)}. Valid: {', '.join(ENTITY_TYPES)}.")
    missing = [f"{name}.yaml" for name in types if not (Path(kb_dir) / f"{name}.yaml").is_file()]
    if missing:
        raise KnowledgeBaseError(f"Knowledge base {kb_dir} lacks {', '.join(missing)}.")
    return {name: load_entity_type(Path(kb_dir) / f"{name}.yaml") for name in types}
