"""Prompt formats: how a question (plus an in-context editor's text) becomes model input.

- `chat`: the tokenizer's chat template, one user turn, generation prompt added;
- `qa`: plain "Q: ... A:" text for base models;
- `raw`: the text as it is;
- `auto`: `chat` when the tokenizer has a chat template, else `qa`.
"""

from __future__ import annotations

from typing import Any

PROMPT_FORMATS = ("auto", "chat", "qa", "raw")


def resolve_prompt_format(name: str, tokenizer: Any) -> str:
    """Validate a prompt format name and resolve `auto` for this tokenizer."""
    if name not in PROMPT_FORMATS:
        raise ValueError(f"Unknown prompt_format '{name}'. Valid: {', '.join(PROMPT_FORMATS)}.")
    if name == "auto":
        return "chat" if getattr(tokenizer, "chat_template", None) else "qa"
    return name


def render_prompt(prompt_format: str, tokenizer: Any, question: str, context: str = "") -> str:
    """Build the model input for `question`, with `context` (e.g. a prepended fact) before it."""
    if prompt_format == "chat":
        messages = [{"role": "user", "content": context + question}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if prompt_format == "qa":
        return f"{context}Q: {question}\nA:"
    if prompt_format == "raw":
        return context + question
    raise ValueError(f"Unresolved prompt format '{prompt_format}'.")
