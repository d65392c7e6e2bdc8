"""`prepend`: in-context editing, the fact is placed before each question.

Wording follows the paper (Appendix B.1, after Cohen et al. 2024): "Imagine that <fact>".
For Controlled RippleEdit, whose facts start with a fake subject's name, Appendix E.3 keeps
it grammatical: "Imagine that someone named <fact>" for a fake person and "Imagine that a
company named <fact>" for a fake company.
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


class Prepend(Editor):
    name = "prepend"
    description = 'In-context: "Imagine that <fact>" before each question (not parametric).'
    config_class = PrependConfig

    def context_for(self, edit: Edit) -> str:
        """The sentence that introduces one edit."""
        templates = {
            "person": self.config.person_template,
            "company": self.config.company_template,
        }
        template = templates.get(edit.subject_type, self.config.template)
        return template.format(fact=edit.fact.strip())

    def apply(self, model, edits: Sequence[Edit]) -> EditHandle:
        separator = self.config.separator
        context = "".join(self.context_for(edit) + separator for edit in edits)
        return EditHandle(tuple(edits), context=context)
