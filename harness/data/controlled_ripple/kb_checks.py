"""Checks of the Controlled RippleEdit knowledge base against the paper and independent sources.

`knowledge_base_problems` compares it with the paper (Tables 9 and 10);
`independent_source_problems` cross-checks the country and language facts against installable
reference packages (pycountry, phonenumbers, babel, countryinfo). The schema and the strict
loader (missing, empty or duplicated answers) are `ripplebench.core.knowledge_base`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable, Iterable

from ripplebench.core.knowledge_base import DOMAINS, EntityType, KnowledgeBase

# Table 9 (entities) and Table 10 (relations): (in-domain, out-of-domain) counts per type.
PAPER_ENTITY_COUNTS = {
    "person": (21, 3), "language": (24, 5), "country": (31, 7), "event": (24, 9),
    "organization": (19, 1), "species": (18, 7), "creative_work": (15, 5),
}  # fmt: skip
PAPER_RELATION_COUNTS = {
    "person": (6, 0), "language": (3, 1), "country": (7, 1), "event": (2, 2),
    "organization": (5, 1), "species": (3, 1), "creative_work": (5, 1),
}  # fmt: skip


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
