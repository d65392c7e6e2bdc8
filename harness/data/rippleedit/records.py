"""RippleEdit's records: an edit with its labelled propagation questions, as prepared data stores them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

# Official criterion name -> the paper's abbreviation, in the paper's column order (Table 28).
CRITERIA = {
    "Logical_Generalization": "LG",
    "Compositionality_I": "CI",
    "Compositionality_II": "CII",
    "Subject_Aliasing": "SA",
    "Relation_Specificity": "RS",
    "Forgetfulness": "FN",
}
TYPE_NAMES = {abbreviation: name.replace("_", " ") for name, abbreviation in CRITERIA.items()}
EFFICACY_TYPES = ("LG", "CI", "CII", "SA")
SPECIFICITY_TYPES = ("RS", "FN")


@dataclass(frozen=True)
class RippleQuery:
    """One propagation question: `type` is LG, CI, CII, SA, RS or FN."""

    prompt: str
    answers: tuple[str, ...]
    type: str
    verbatim: bool

    @property
    def category(self) -> str:
        """efficacy (LG, CI, CII, SA) or specificity (RS, FN)."""
        return "efficacy" if self.type in EFFICACY_TYPES else "specificity"


@dataclass(frozen=True)
class RippleEdit:
    """One edit with its kept questions; `dropped` counts the questions that had no answer."""

    edit_id: str
    subset: str
    fact: str
    relation: str
    atomic_facts: tuple[dict[str, str], ...]
    queries: tuple[RippleQuery, ...]
    dropped: int = 0

    @property
    def eligible_for_evaluation(self) -> bool:
        """PropMEND's val/test filter: at least one efficacy and one specificity question."""
        categories = {query.category for query in self.queries}
        return {"efficacy", "specificity"} <= categories

    def to_record(self) -> dict[str, Any]:
        """The edit as one JSON object (a line of a prepared split)."""
        return {**asdict(self), "queries": [asdict(query) for query in self.queries]}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "RippleEdit":
        """The edit a prepared split's line holds."""
        queries = tuple(
            RippleQuery(q["prompt"], tuple(q["answers"]), q["type"], bool(q["verbatim"])) for q in record["queries"]
        )
        fields = {key: record[key] for key in ("edit_id", "subset", "fact", "relation", "dropped")}
        return cls(**fields, atomic_facts=tuple(record["atomic_facts"]), queries=queries)
