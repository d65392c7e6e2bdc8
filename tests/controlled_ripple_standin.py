"""A stand-in Controlled RippleEdit knowledge base for tests of the generator's mechanics.

It copies the package's real files and fills the other entity types with placeholder entities
("Person In 3") and answers, with Table 10's relations and Table 9's entity counts, so the
generator can be tested whether or not every real knowledge-base file is present.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from ripplebench.core.knowledge_base import ENTITY_TYPES
from ripplebench.core.paths import CONTROLLED_RIPPLE_KB_DIR
from ripplebench.harness.data.controlled_ripple.kb_checks import PAPER_ENTITY_COUNTS

RELATIONS = {
    "person": {
        "occupation": ("What occupation is {person} most well-known for?", "in"),
        "birthplace": ("Where was the birthplace of {person}?", "in"),
        "language_spoken": ("What language was primarily spoken by {person}?", "in"),
        "death_year": ("What year did {person} pass away?", "in"),
        "religion": ("What is the religion of {person}?", "in"),
        "birth_year": ("What year was {person} born?", "in"),
    },
    "event": {
        "country": ("In which country did {event} happen?", "in"),
        "key_figure": ("Who was the most important leader or figure involved in {event}?", "in"),
        "start_date": ("When did {event} take place?", "out"),
        "end_year": ("What year did {event} end?", "out"),
    },
    "organization": {
        "founding_place": ("Where was {organization} established?", "in"),
        "founding_year": ("In what year was {organization} established?", "in"),
        "founder": ("Who established {organization}?", "in"),
        "industry": ("What is the primary field or industry of {organization}?", "in"),
        "main_product": ("What primary service or product does {organization} provide?", "in"),
        "headquarters": ("Where is the headquarters of {organization} located?", "out"),
    },
    "species": {
        "social_structure": ("What is the social structure of {species}?", "in"),
        "diet": ("What is the diet of {species}?", "in"),
        "organism_type": ("What type of organism is {species}?", "in"),
        "native_region": ("Where is {species} primarily native to?", "out"),
    },
    "creative_work": {
        "original_language": ("What is the original language of {creative_work}?", "in"),
        "release_date": ("When was {creative_work} released or published?", "in"),
        "production_place": ("Where was {creative_work} produced or created?", "in"),
        "first_release_country": ("In which country was {creative_work} first released or published?", "in"),
        "genre": ("What is the genre or style of {creative_work}?", "in"),
        "creator": ("Who is the creator of {creative_work}?", "out"),
    },
}


def standin_type(name: str) -> dict:
    """A knowledge-base file's content with placeholder entities and answers."""
    relations = RELATIONS[name]
    title = name.replace("_", " ").title()
    entities = [
        {
            "name": f"{title} {domain.title()} {number}",
            "domain": domain,
            "facts": {rid: [f"{rid} of {title} {domain} {number}", f"alias {number}"] for rid in relations},
        }
        for domain, count in zip(("in", "out"), PAPER_ENTITY_COUNTS[name])
        for number in range(1, count + 1)
    ]
    return {
        "entity_type": name,
        "sources": {rid: "stand-in for tests" for rid in relations},
        "relations": {rid: {"template": template, "domain": domain} for rid, (template, domain) in relations.items()},
        "entities": entities,
    }


def write_kb(folder: Path) -> Path:
    """Real files where the package has them, stand-ins for the rest; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ENTITY_TYPES:
        real = CONTROLLED_RIPPLE_KB_DIR / f"{name}.yaml"
        if real.is_file():
            shutil.copy(real, folder / real.name)
        else:
            (folder / f"{name}.yaml").write_text(yaml.safe_dump(standin_type(name), sort_keys=False))
    return folder
