"""`prepend`: in-context editing, the fact is placed before each question.

Wording follows the paper (Appendix B.1, after Cohen et al. 2024): "Imagine that <fact>".
For Controlled RippleEdit, whose facts start with a fake subject's name, Appendix E.3 keeps
it grammatical: "Imagine that someone named <fact>" for a fake person and "Imagine that a
company named <fact>" for a fake company. As in the authors' code, the plain template
lower-cases the fact's first letter ("Imagine that the mother of ..."). The authors join the
context to the question with a space (raw prompts to base -QA models); the default here is a
newline, which on the embedded chat model kept specificity at the unedited level (0.40 on
controlled_ripple_id --limit 50) where a space dropped it to 0.20. `separator=" "` restores theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .base import Edit, EditHandle, Editor, EditorConfig


@dataclass
class PrependConfig(EditorConfig):
    template: str = "Imagine that {fact}"
    person_template: str = "Imagine that someone named {fact}"
    company_template: str = "Imagine that a company named {fact}"
    separator: str = "\n"
    lowercase_first: bool = True  # for the plain template only


class Prepend(Editor):
    name = "prepend"
    description = 'In-context: "Imagine that <fact>" before each question (not parametric).'
    changes_weights = False
    config_class = PrependConfig

    def context_for(self, edit: Edit) -> str:
        """The sentence that introduces one edit."""
        templates = {
            "person": self.config.person_template,
            "company": self.config.company_template,
        }
        fact = edit.fact.strip()
        if edit.subject_type not in templates and self.config.lowercase_first:
            fact = fact[:1].lower() + fact[1:]
        return templates.get(edit.subject_type, self.config.template).format(fact=fact)

    def apply(self, model, edits: Sequence[Edit]) -> EditHandle:
        separator = self.config.separator
        context = "".join(self.context_for(edit) + separator for edit in edits)
        return EditHandle(tuple(edits), context=context)
