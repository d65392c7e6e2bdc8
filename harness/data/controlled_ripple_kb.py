"""The Controlled RippleEdit knowledge base: gold answers for every (entity, relation) pair.

One YAML file per entity type in `controlled_ripple_kb/` (schema: entity_type, sources,
relations {id: {template, domain}}, entities [{name, domain, facts {relation: [answers]}}]).
`load_knowledge_base` parses it strictly (duplicate keys are errors, not silent overwrites);
`knowledge_base_problems` checks it against the paper (Tables 9 and 10) and for missing, empty
or duplicated answers; `independent_source_problems` cross-checks the country and language facts
against installable reference packages (pycountry, phonenumbers, babel, countryinfo).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

PACKAGE_KB_DIR = Path(__file__).parent / "controlled_ripple_kb"
ENTITY_TYPES = ("person", "language", "country", "event", "organization", "species", "creative_work")
DOMAINS = ("in", "out")
# Table 9 (entities) and Table 10 (relations): (in-domain, out-of-domain) counts per type.
PAPER_ENTITY_COUNTS = {
    "person": (21, 3), "language": (24, 5), "country": (31, 7), "event": (24, 9),
    "organization": (19, 1), "species": (18, 7), "creative_work": (15, 5),
}  # fmt: skip
PAPER_RELATION_COUNTS = {
    "person": (6, 0), "language": (3, 1), "country": (7, 1), "event": (2, 2),
    "organization": (5, 1), "species": (3, 1), "creative_work": (5, 1),
}  # fmt: skip


class KnowledgeBaseError(ValueError):
    """A knowledge-base file is missing or malformed."""


@dataclass(frozen=True)
class Relation:
    id: str
    template: str  # Table 10 question, with the entity as {<entity_type>}
    domain: str

    def ask(self, entity_type: str, mention: str) -> str:
        """The relation's question about `mention` (an entity name or a description of it)."""
        return self.template.replace("{" + entity_type + "}", mention)


@dataclass(frozen=True)
class Entity:
    name: str
    domain: str
    facts: dict[str, tuple[str, ...]]  # relation id -> answers, canonical first


@dataclass(frozen=True, eq=False)  # compared and hashed by identity (it holds dicts)
class EntityType:
    name: str
    sources: dict[str, str]
    relations: dict[str, Relation]
    entities: tuple[Entity, ...]

    def entities_in(self, domain: str) -> list[Entity]:
        return [entity for entity in self.entities if entity.domain == domain]

    def relations_in(self, domain: str) -> list[Relation]:
        return [relation for relation in self.relations.values() if relation.domain == domain]


KnowledgeBase = dict[str, EntityType]


@functools.lru_cache(maxsize=None)
def slug(text: str) -> str:
    """A lowercase ASCII id for a name: "Persian (Farsi)" -> "persian-farsi"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def entity_id(entity_type: str, name: str) -> str:
    return f"{entity_type}:{slug(name)}"


def relation_id(entity_type: str, relation: str) -> str:
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


def load_knowledge_base(kb_dir: Path = PACKAGE_KB_DIR, types: Iterable[str] = ENTITY_TYPES) -> KnowledgeBase:
    """Load the knowledge base of the given entity types; a missing file is an error."""
    types = tuple(types)
    unknown = [name for name in types if name not in ENTITY_TYPES]
    if unknown:
        raise KnowledgeBaseError(f"Unknown entity type(s) {', '.join(unknown)}. Valid: {', '.join(ENTITY_TYPES)}.")
    missing = [f"{name}.yaml" for name in types if not (Path(kb_dir) / f"{name}.yaml").is_file()]
    if missing:
        raise KnowledgeBaseError(f"Knowledge base {kb_dir} lacks {', '.join(missing)}.")
    return {name: load_entity_type(Path(kb_dir) / f"{name}.yaml") for name in types}


def knowledge_base_problems(kb: KnowledgeBase) -> list[str]:
    """Differences from the paper's entity and relation counts (Tables 9 and 10)."""
    problems = []
    for name, entity_type in kb.items():
        entities = tuple(len(entity_type.entities_in(domain)) for domain in DOMAINS)
        relations = tuple(len(entity_type.relations_in(domain)) for domain in DOMAINS)
        if entities != PAPER_ENTITY_COUNTS[name]:
            problems.append(f"{name}: {entities} in/out-of-domain entities, Table 9 has {PAPER_ENTITY_COUNTS[name]}")
        if relations != PAPER_RELATION_COUNTS[name]:
            problems.append(
                f"{name}: {relations} in/out-of-domain relations, Table 10 has {PAPER_RELATION_COUNTS[name]}"
            )
    return problems


# ---- independent sources (PyPI packages) for country and language facts ----------------------


def _folded(text: str) -> str:
    """Lowercase ASCII letters and digits only: "Washington, D.C." -> "washingtondc"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", ascii_text.casefold())


def _mentions(answers: Iterable[str], word: str) -> bool:
    return any(_folded(word) in _folded(answer) for answer in answers)


def _similar(one: str, other: str) -> bool:
    """Whether one name contains the other, ignoring case, accents and punctuation."""
    one, other = _folded(one), _folded(other)
    return bool(one and other) and (one in other or other in one)


def _country_problems(entity_type: EntityType) -> list[str]:
    import babel
    import babel.languages
    import babel.numbers
    import phonenumbers
    import pycountry
    from countryinfo import CountryInfo

    problems = []
    for entity in entity_type.entities:
        facts, where = entity.facts, f"country '{entity.name}'"
        info = CountryInfo(entity.name)
        alpha2 = info.iso(2)
        if facts["iso_alpha2"][0] != alpha2 or pycountry.countries.get(alpha_2=alpha2) is None:
            problems.append(f"{where}: iso_alpha2 {facts['iso_alpha2'][0]} but countryinfo/pycountry say {alpha2}")
        code = f"+{phonenumbers.country_code_for_region(alpha2)}"
        if facts["calling_code"][0] != code:
            problems.append(f"{where}: calling_code {facts['calling_code'][0]} but phonenumbers says {code}")
        currencies = babel.numbers.get_territory_currencies(alpha2)
        currency = pycountry.currencies.get(alpha_3=currencies[0]) if currencies else None
        if currency is None or currency.alpha_3 not in facts["currency"]:
            problems.append(f"{where}: currency {facts['currency']} lacks CLDR's {currencies}")
        elif not _mentions(facts["currency"], currency.name.split()[-1]):
            problems.append(f"{where}: currency {facts['currency']} does not name ISO 4217 '{currency.name}'")
        if facts["internet_tld"][0] not in info.tld():
            problems.append(f"{where}: internet_tld {facts['internet_tld']} but countryinfo says {info.tld()}")
        if not _mentions(facts["capital"], info.capital()):
            problems.append(f"{where}: capital {facts['capital']} but countryinfo says {info.capital()}")
        spoken = babel.languages.get_territory_language_info(alpha2)
        official = {code: info for code, info in spoken.items() if info["official_status"]} or spoken
        top = max(official, key=lambda code: official[code]["population_percent"])
        top_name = babel.Locale.parse(top).english_name
        if not any(_similar(answer, top_name) for answer in facts["most_spoken_language"]):
            problems.append(
                f"{where}: most_spoken_language {facts['most_spoken_language']} lacks CLDR's most spoken, {top_name}"
            )
    return problems


def _script_words(script_name: str) -> list[str]:
    """Words of an ISO 15924 name that name a script: "Korean (alias for Hangul + Han)" -> Korean, Hangul."""
    return [word for word in re.findall(r"[A-Za-z]+", script_name) if len(word) > 3 and word not in {"alias"}]


def _language_problems(entity_type: EntityType) -> list[str]:
    import babel
    import pycountry
    from babel.core import get_global

    likely = get_global("likely_subtags")
    problems = []
    for entity in entity_type.entities:
        facts, where = entity.facts, f"language '{entity.name}'"
        code = facts["iso_639_1"][0]
        language = pycountry.languages.get(alpha_2=code)
        if language is None:
            problems.append(f"{where}: iso_639_1 '{code}' is not an ISO 639-1 code (pycountry)")
            continue
        names = [re.sub(r"\(.*?\)", "", language.name), babel.Locale.parse(code).english_name]
        if not any(_similar(name, entity.name) for name in names):
            problems.append(f"{where}: iso_639_1 '{code}' is {' / '.join(names)} in pycountry / CLDR")
        script_code = likely.get(code, "").split("_")[1] if "_" in likely.get(code, "") else ""
        script = pycountry.scripts.get(alpha_4=script_code) if script_code else None
        for relation in ("writing_system", "script_name"):
            if script is None or not any(_mentions(facts[relation], word) for word in _script_words(script.name)):
                found = script.name if script else "nothing"
                problems.append(f"{where}: {relation} {facts[relation]} lacks CLDR's likely script ({found})")
    return problems


INDEPENDENT_CHECKS: dict[str, tuple[tuple[str, ...], Callable[[EntityType], list[str]]]] = {
    "country": (("pycountry", "phonenumbers", "babel", "countryinfo"), _country_problems),
    "language": (("pycountry", "babel"), _language_problems),
}


def independent_source_problems(kb: KnowledgeBase) -> tuple[list[str], list[str]]:
    """(problems, skipped): disagreements with reference packages, and checks skipped because a
    package is not installed (`pip install ripplebench[data]`)."""
    import importlib.util

    problems, skipped = [], []
    for name, (packages, check) in INDEPENDENT_CHECKS.items():
        if name not in kb:
            continue
        absent = [package for package in packages if importlib.util.find_spec(package) is None]
        if absent:
            skipped.append(f"{name}: needs {', '.join(absent)}")
        else:
            problems.extend(check(kb[name]))
    return problems, skipped
