"""Settings given as text (model_args, `--set key=value`, YAML): one parser and one type rule.

The rule (`coerce`): a number field takes numbers and strings that spell one (YAML reads `1e-6`,
without a dot, as a string); an integer field refuses fractions; a boolean field takes
true/false, yes/no, on/off or 1/0 (any case); a text field takes anything, written as text.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Mapping, Sequence, TypeVar

import yaml

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
_KIND_NAMES = {bool: "true or false", int: "an integer (e.g. 16)", float: "a number (e.g. 1e-05)"}

Config = TypeVar("Config")


def parse_bool(value: Any, where: str) -> bool:
    """`value` as a boolean by the rule above; `where` names the setting in the error."""
    converted = _convert(value, bool)
    if converted is None:
        raise ValueError(f"{where} must be {_KIND_NAMES[bool]}, not {value!r}.")
    return converted


def coerce(value: Any, kind: Any, where: str) -> Any:
    """Convert a value parsed from text or YAML to a declared type (`bool`, `int`, `float`, `str`;
    others pass through unchanged); a value the rule refuses raises ValueError naming `where`."""
    if kind is str:
        return value if isinstance(value, str) else str(value)
    if kind not in _KIND_NAMES:
        return value
    converted = _convert(value, kind)
    if converted is None:
        raise ValueError(f"{where} must be {_KIND_NAMES[kind]}, not {value!r} ({type(value).__name__}).")
    return converted


def _convert(value: Any, kind: type) -> Any:
    """`value` as `kind` by the rule above, or None when the rule refuses it."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        return True if text in TRUE_WORDS else False if text in FALSE_WORDS else None
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)):
        return None
    if kind is int:
        return int(value) if float(value).is_integer() else None
    return float(value)


def parse_assignments(items: Sequence[str], option: str = "--set") -> dict[str, Any]:
    """`key=value` strings as a mapping, each value read as a YAML scalar (number, boolean, text)."""
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{option} expects key=value, got '{item}'.")
        settings[key.strip()] = yaml.safe_load(value)
    return settings


def build_dataclass(
    config_class: type[Config],
    values: Mapping[str, Any],
    origin: str,
    sources: Mapping[str, str] | None = None,
) -> Config:
    """A dataclass from `values`, refusing unknown fields (listing the valid ones) and values of
    the wrong type (naming the type expected). `sources` says where each value came from (a YAML
    file, model_args) for the error messages."""
    sources = sources or {}
    fields = {field.name for field in dataclasses.fields(config_class)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - fields)
    if unknown:
        valid = ", ".join(sorted(fields)) or "(none)"
        given = "".join(f" ({source})" for source in sorted({sources[key] for key in unknown if key in sources}))
        raise ValueError(f"Unknown setting(s) {', '.join(unknown)} for {origin}{given}. Valid: {valid}.")
    hints = typing.get_type_hints(config_class)
    converted = {}
    for key, value in values.items():
        where = f"Setting '{key}' of {origin}" + (f" ({sources[key]})" if key in sources else "")
        converted[key] = coerce(value, hints.get(key), where)
    return config_class(**converted)
