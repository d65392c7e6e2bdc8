"""Controlled RippleEdit (PropMEND paper, section 5 and Appendix E): generate every split, check it.

An instance is a short story (Table 8) about a fake subject, a person or a company, involving
three real entities of one type; its questions ask relations (Table 10) of those entities, once
through the story (`alias_question`, efficacy: "the country where Mira Santos was born") and
once directly (`unalias_question`, specificity). Answers come from the knowledge base
(`controlled_ripple_kb`). Sampling follows Appendix E.1: an entity type weighted by its number of
entities, three distinct entities of it, a story template, and for each relation of the type the
entity the question is about. Generation is deterministic in the seed.

Reading instances (ours or the official release) lives in `controlled_ripple_io`.
"""

from __future__ import annotations

import functools
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, Iterator

from ripplebench.harness.data.controlled_ripple_io import open_text
from ripplebench.harness.data.controlled_ripple_kb import (
    ENTITY_TYPES,
    Entity,
    EntityType,
    KnowledgeBase,
    Relation,
    entity_id,
    read_yaml,
    relation_id,
)

DATA_FILES_DIR = Path(__file__).parent
STORY_TEMPLATES = DATA_FILES_DIR / "controlled_ripple_story_templates.yaml"
NAME_LISTS = DATA_FILES_DIR / "controlled_ripple_names.yaml"
CARD_TEMPLATE = DATA_FILES_DIR / "controlled_ripple_card.md"
SUBJECT_KINDS = ("person", "company")
PRONOUNS = {"male": ("he", "him", "his"), "female": ("she", "her", "her"), "company": ("it", "it", "its")}
SLOT_FIELDS = ("description", "atomic", "paraphrase")
DOMAIN_NAMES = {"in": "in-domain", "out": "out-of-domain"}


@dataclass(frozen=True)
class SplitSpec:
    """How many instances a split has and which domain its entities and relations come from."""

    size: int
    entity_domain: str
    relation_domain: str
    paper_questions: int | None = None  # Table 2's question count for the paper's test sets


SPLITS = {
    "train": SplitSpec(4000, "in", "in"),
    "validation": SplitSpec(500, "in", "in"),
    "test_id": SplitSpec(500, "in", "in", 2284),
    "test_ood_entity": SplitSpec(350, "out", "in", 1368),
    "test_ood_relation": SplitSpec(350, "in", "out", 421),
    "test_ood_both": SplitSpec(350, "out", "out", 447),
}
GZIPPED_SPLITS = ("train",)
IN_DOMAIN_SPLITS = tuple(name for name, spec in SPLITS.items() if (spec.entity_domain, spec.relation_domain) == ("in", "in"))


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


# ---- fake subjects ---------------------------------------------------------------------------


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


# ---- sampling (Appendix E.1) -----------------------------------------------------------------


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
            raise ValueError(f"No entity type can fill split {split} ({spec.entity_domain}-domain entities, "
                             f"{spec.relation_domain}-domain relations) from types {', '.join(kb)}.")
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


# ---- checks ----------------------------------------------------------------------------------

_PRONOUN_WORDS = {"male": {"he", "him", "his"}, "female": {"she", "her", "hers"}, "company": {"it", "its"}}
_QUESTION_KEYS = ("alias_question", "unalias_question", "answer")


@functools.lru_cache(maxsize=None)
def _lookups(entity_type: EntityType) -> tuple[dict[str, Entity], dict[str, Relation]]:
    """An entity type's entities and relations by their ids."""
    entities = {entity_id(entity_type.name, e.name): e for e in entity_type.entities}
    relations = {relation_id(entity_type.name, r.id): r for r in entity_type.relations.values()}
    return entities, relations


def _instance_problems(instance: dict[str, Any], spec: SplitSpec, kb: KnowledgeBase, where: str) -> list[str]:
    problems = []
    entity_type = kb.get(instance.get("entity_type", ""))
    if entity_type is None:
        return [f"{where}: unknown entity_type {instance.get('entity_type')!r}"]
    entities, relations = _lookups(entity_type)
    texts = [instance["text"], *(q[key] for q in instance["questions"] for key in _QUESTION_KEYS)]
    texts += [fact[key] for fact in instance["atomic_facts"] for key in ("prompt", "paraphrase")]
    if any("{" in text or "}" in text for text in texts):
        problems.append(f"{where}: unfilled placeholder")
    words = set(re.findall(r"[a-z]+", instance["text"].lower()))
    used = {gender for gender, pronouns in _PRONOUN_WORDS.items() if words & pronouns}
    expected = {"company"} if instance["subject_type"] == "company" else {"male", "female"}
    if len(used) != 1 or not used <= expected:
        problems.append(f"{where}: pronouns {sorted(used)} do not fit a {instance['subject_type']} subject")
    if any(entities.get(eid) is None or entities[eid].domain != spec.entity_domain for eid in instance["entity_ids"]):
        problems.append(f"{where}: entities {instance['entity_ids']} are not all {spec.entity_domain}-domain")
    for number, question in enumerate(instance["questions"]):
        entity, relation = entities.get(question["entity_id"]), relations.get(question["relation_id"])
        at = f"{where} question {number}"
        if entity is None or relation is None or question["entity_id"] not in instance["entity_ids"]:
            problems.append(f"{at}: entity or relation not of this instance")
            continue
        if relation.domain != spec.relation_domain:
            problems.append(f"{at}: relation {question['relation_id']} is not {spec.relation_domain}-domain")
        if [question["answer"], *question["answer_aliases"]] != list(entity.facts[relation.id]):
            problems.append(f"{at}: answers differ from the knowledge base's {entity.facts[relation.id]}")
        if question["unalias_question"] != relation.ask(entity_type.name, entity.name):
            problems.append(f"{at}: specificity question does not name {entity.name}")
        named = re.search(rf"\b{re.escape(entity.name)}\b", question["alias_question"])
        if instance["subject"] not in question["alias_question"] or named:
            problems.append(f"{at}: efficacy question must name the subject, not the entity")
    return problems


def split_problems(splits: dict[str, list[dict[str, Any]]], kb: KnowledgeBase) -> list[str]:
    """Everything a generated dataset promises: sizes, domains, answers from the knowledge base,
    filled templates, pronouns, distinct subjects, and the disjointness of each OOD split."""
    problems = []
    missing = [name for name in SPLITS if name not in splits]
    if missing:
        problems.append(f"missing split(s): {', '.join(missing)}")
    subjects: dict[str, str] = {}
    for split, instances in splits.items():
        spec = SPLITS[split]
        if len(instances) != spec.size:
            problems.append(f"{split}: {len(instances)} instances, expected {spec.size}")
        for number, instance in enumerate(instances):
            problems += _instance_problems(instance, spec, kb, f"{split}[{number}] ({instance.get('id')})")
            if instance["subject"] in subjects:
                problems.append(f"{split}[{number}]: subject {instance['subject']} reused from {subjects[instance['subject']]}")
            subjects[instance["subject"]] = f"{split}[{number}]"
    seen_entities = {e for s in IN_DOMAIN_SPLITS for i in splits.get(s, []) for e in i["entity_ids"]}
    seen_relations = {q["relation_id"] for s in IN_DOMAIN_SPLITS for i in splits.get(s, []) for q in i["questions"]}
    for split, instances in splits.items():
        spec = SPLITS[split]
        if spec.entity_domain == "out":
            overlap = seen_entities & {e for i in instances for e in i["entity_ids"]}
            if overlap:
                problems.append(f"{split}: entities also in in-domain splits: {sorted(overlap)}")
        if spec.relation_domain == "out":
            overlap = seen_relations & {q["relation_id"] for i in instances for q in i["questions"]}
            if overlap:
                problems.append(f"{split}: relations also in in-domain splits: {sorted(overlap)}")
    return problems


# ---- files -----------------------------------------------------------------------------------


def split_path(data_dir: Path, split: str) -> Path:
    """<data_dir>/<split>.jsonl; train is gzipped (about 10 MB of text, 1 MB compressed)."""
    return Path(data_dir) / (f"{split}.jsonl.gz" if split in GZIPPED_SPLITS else f"{split}.jsonl")


def serialize(instances: list[dict[str, Any]]) -> str:
    """JSON lines, UTF-8, compact, keys in generation order: the same instances give the same bytes."""
    return "".join(json.dumps(instance, ensure_ascii=False, separators=(",", ":")) + "\n" for instance in instances)


def write_splits(splits: dict[str, list[dict[str, Any]]], data_dir: Path) -> list[Path]:
    """Write each split to <data_dir>/<split>.jsonl."""
    paths = []
    for split, instances in splits.items():
        path = split_path(data_dir, split)
        with open_text(path, "w") as handle:
            handle.write(serialize(instances))
        paths.append(path)
    return paths


def count_table(splits: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown table of instances and questions per split, next to the paper's question counts."""
    rows = [
        "| split | entities | relations | instances | efficacy questions | specificity questions | paper's questions |",
        "|---|---|---|---|---|---|---|",
    ]
    for split, instances in splits.items():
        spec = SPLITS[split]
        questions = sum(len(instance["questions"]) for instance in instances)
        paper = f"{spec.paper_questions} over {spec.size}" if spec.paper_questions else "-"
        rows.append(
            f"| {split} | {DOMAIN_NAMES[spec.entity_domain]} | {DOMAIN_NAMES[spec.relation_domain]} | {len(instances)} "
            f"| {questions} | {questions} | {paper} |"
        )
    return "\n".join(rows)


def type_table(splits: dict[str, list[dict[str, Any]]], kb: KnowledgeBase) -> str:
    """Markdown table of instances per entity type and split."""
    rows = ["| entity type | " + " | ".join(splits) + " |", "|---" * (len(splits) + 1) + "|"]
    for name in kb:
        counts = [sum(instance["entity_type"] == name for instance in instances) for instances in splits.values()]
        rows.append(f"| {name} | " + " | ".join(map(str, counts)) + " |")
    return "\n".join(rows)


def source_table(kb: KnowledgeBase) -> str:
    """Markdown table of where each relation's facts come from, read from the knowledge base."""
    rows = ["| entity type | relation | domain | source of the answers |", "|---|---|---|---|"]
    for name, entity_type in kb.items():
        for relation in entity_type.relations.values():
            rows.append(f"| {name} | {relation.id} | {relation.domain} | {entity_type.sources[relation.id]} |")
    return "\n".join(rows)


def write_card(splits: dict[str, list[dict[str, Any]]], kb: KnowledgeBase, seed: int, data_dir: Path) -> Path:
    """The dataset card (README.md) with this generation's counts and the knowledge base's sources."""
    command = f"ripplebench data controlled-ripple generate --seed {seed}"
    if set(kb) != set(ENTITY_TYPES):
        command += f" --types {','.join(kb)}"
    text = Template(CARD_TEMPLATE.read_text(encoding="utf-8")).substitute(
        command=command,
        counts=count_table(splits),
        types=type_table(splits, kb),
        sources=source_table(kb),
    )
    path = Path(data_dir) / "README.md"
    path.write_text(text, encoding="utf-8")
    return path
