"""Controlled RippleEdit's dataset card (README.md next to the splits) and its tables."""

from __future__ import annotations

from pathlib import Path
from string import Template
from typing import Any

from ripplebench.core.knowledge_base import ENTITY_TYPES, KnowledgeBase
from ripplebench.harness.data.controlled_ripple.splits import SPLITS

CARD_TEMPLATE = Path(__file__).parent / "card.md"
DOMAIN_NAMES = {"in": "in-domain", "out": "out-of-domain"}


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
