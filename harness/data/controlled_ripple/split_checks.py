"""What a generated Controlled RippleEdit dataset promises, checked: sizes, domains, answers
from the knowledge base, filled templates, pronouns, distinct subjects, OOD disjointness."""

from __future__ import annotations

import functools
import re
from typing import Any

from ripplebench.core.knowledge_base import Entity, EntityType, KnowledgeBase, Relation, entity_id, relation_id
from ripplebench.harness.data.controlled_ripple.splits import IN_DOMAIN_SPLITS, SPLITS, SplitSpec

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
                problems.append(
                    f"{split}[{number}]: subject {instance['subject']} reused from {subjects[instance['subject']]}"
                )
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
