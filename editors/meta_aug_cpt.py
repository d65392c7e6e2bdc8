"""`meta_aug_cpt`: CPT on the fact plus oracle QA built from the knowledge base (paper 5.1).

An ORACLE baseline: it knows how the meta-training data was built, so it adds, for every real
entity named in the fact, that entity's in-domain relation questions with their gold answers
(editors/augment.py) and trains on them together with the fact. Its results must not be read
as those of a method that could run on unseen data; `handle.stats["oracle"]` says so.

Deviation from the paper: the paper phrases the augmentations as the multi-hop propagation
questions of meta-training ("What is the currency of the country that Adam Jacobson was
born?"), which come from the story templates. The knowledge base holds the relations and
answers but not those phrasings, so we use the single-hop questions about the real entity
("What is the currency of Kenya? Kenyan shilling.") next to the fact that names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from ripplebench.core.paths import CONTROLLED_RIPPLE_KB_DIR

from .augment import augment_facts, load_kb_folder
from .base import Edit, EditHandle
from .cpt import CPT, CPTConfig


@dataclass
class MetaAugCPTConfig(CPTConfig):
    # Folder of the Controlled RippleEdit knowledge base (person.yaml, country.yaml, ...).
    kb_dir: str = str(CONTROLLED_RIPPLE_KB_DIR)


@lru_cache(maxsize=4)
def _knowledge_base(folder: str):
    return load_kb_folder(folder)


class MetaAugCPT(CPT):
    name = "meta_aug_cpt"
    description = (
        "ORACLE: CPT on the fact plus gold in-domain QA about its entities from the Controlled "
        "RippleEdit knowledge base (paper section 5.1, Meta-Aug CPT)."
    )
    config_class = MetaAugCPTConfig

    def check(self, model_config) -> None:
        super().check(model_config)
        _knowledge_base(self.config.kb_dir)  # a missing or empty KB fails before any model work

    def training_texts(self, model, edits: Sequence[Edit]) -> list[str]:
        kb = _knowledge_base(self.config.kb_dir)
        return augment_facts([(edit.id, edit.fact) for edit in edits], kb)

    def apply(self, model, edits: Sequence[Edit]) -> EditHandle:
        handle = super().apply(model, edits)
        handle.stats["oracle"] = True
        return handle
