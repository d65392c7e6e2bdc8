"""Finding editors by name: built-ins, third-party entry points, and YAML presets.

Third-party packages add editors without touching ripplebench by declaring an entry point in
the group `ripplebench.editors` whose value is an `Editor` subclass. A preset is a YAML file
in `editors/presets/` naming an editor and config values, e.g. `cpt_mid_upper`.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import typing
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Mapping

import yaml

from .base import Editor, EditorConfig

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ripplebench.editors"
PRESETS_DIR = Path(__file__).parent / "presets"
BUILTIN: dict[str, str] = {
    "none": "ripplebench.editors.none:NoEdit",
    "prepend": "ripplebench.editors.prepend:Prepend",
    "cpt": "ripplebench.editors.cpt:CPT",
    "memit": "ripplebench.editors.memit:MEMIT",
    "alphaedit": "ripplebench.editors.alphaedit:AlphaEdit",
    "jeep": "ripplebench.editors.jeep:JEEP",
    "meta_aug_cpt": "ripplebench.editors.meta_aug_cpt:MetaAugCPT",
    "active_reading_cpt": "ripplebench.editors.active_reading_cpt:ActiveReadingCPT",
    "mend": "ripplebench.editors.mend.editor:MEND",
    "propmend": "ripplebench.editors.mend.editor:PropMEND",
    "rledit": "ripplebench.editors.mend.editor:RLEdit",
}


@dataclass(frozen=True)
class EditorEntry:
    """One name `editor=` accepts: an editor, or a preset of one."""

    name: str
    source: str  # "built-in", the distribution that provides it, or "preset"
    target: str  # "module:Class" for editors, the YAML path for presets

    def load(self) -> type[Editor]:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


def _third_party() -> list[EditorEntry]:
    found = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in BUILTIN:
            log.warning("Ignoring third-party editor '%s': the name is built in.", point.name)
            continue
        distribution = point.dist.name if point.dist else "unknown package"
        found.append(EditorEntry(point.name, distribution, point.value))
    return found


def _presets() -> list[EditorEntry]:
    return [EditorEntry(path.stem, "preset", str(path)) for path in sorted(PRESETS_DIR.glob("*.yaml"))]


def available_editors() -> dict[str, EditorEntry]:
    """Every name `editor=` accepts, built-ins first, then third-party editors, then presets."""
    entries: dict[str, EditorEntry] = {}
    builtin = [EditorEntry(name, "built-in", target) for name, target in BUILTIN.items()]
    for entry in builtin + _third_party() + _presets():
        entries.setdefault(entry.name, entry)
    return entries


def _read_yaml(path: str | Path) -> dict[str, Any]:
    if not Path(path).is_file():
        raise ValueError(f"Editor config file '{path}' does not exist.")
    return dict(yaml.safe_load(Path(path).read_text()) or {})


def read_preset(path: str | Path) -> tuple[str, dict[str, Any], str]:
    """Read a preset YAML: (editor name, config values, description)."""
    data = _read_yaml(path)
    if "editor" not in data:
        raise ValueError(f"Editor preset {path} has no 'editor' key naming the editor it configures.")
    return data["editor"], dict(data.get("config") or {}), data.get("description", "")


def describe(entry: EditorEntry) -> str:
    """One line describing an editor or preset."""
    if entry.source == "preset":
        editor, values, description = read_preset(entry.target)
        settings = ", ".join(f"{key}={value}" for key, value in values.items())
        return description or f"{editor} with {settings}"
    return entry.load().description


_KIND_NAMES = {bool: "true or false", int: "an integer (e.g. 16)", float: "a number (e.g. 1e-05)"}
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _coerce(value: Any, kind: Any, where: str) -> Any:
    """Convert a value parsed from model_args/YAML to a config field's declared type.

    The rule: a number field takes numbers and strings that spell one (YAML reads `1e-6`,
    without a dot, as a string); an integer field refuses fractions; a boolean field takes
    true/false (or yes/no, on/off, 1/0); a text field takes anything, written as text. Any
    other value is refused with `where` (the setting and its source) and the expected type.
    """
    if kind is str:
        return value if isinstance(value, str) else str(value)
    if kind not in _KIND_NAMES:
        return value
    converted = _convert(value, kind)
    if converted is None:
        raise ValueError(f"{where} must be {_KIND_NAMES[kind]}, not {value!r} ({type(value).__name__}).")
    return converted


def _convert(value: Any, kind: type) -> Any:
    """`value` as `kind` by `_coerce`'s rule, or None when the rule refuses it."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        return True if text in _TRUE else False if text in _FALSE else None
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


def make_config(
    config_class: type[EditorConfig],
    values: Mapping[str, Any],
    origin: str,
    sources: Mapping[str, str] | None = None,
) -> EditorConfig:
    """Build a config dataclass, rejecting unknown fields with the list of valid ones and values
    of the wrong type with the type expected. `sources` names where each value came from (a
    YAML file, model_args) for the error messages."""
    sources = sources or {}
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        valid = ", ".join(sorted(fields)) or "(none)"
        given = "".join(f" ({source})" for source in sorted({sources[key] for key in unknown if key in sources}))
        raise ValueError(f"Unknown setting(s) {', '.join(unknown)} for {origin}{given}. Valid: {valid}.")
    hints = typing.get_type_hints(config_class)
    converted = {}
    for key, value in values.items():
        where = f"Setting '{key}' of {origin}" + (f" ({sources[key]})" if key in sources else "")
        converted[key] = _coerce(value, hints.get(key), where)
    return config_class(**converted)


def build_editor(
    name: str,
    overrides: Mapping[str, Any] | None = None,
    config_file: str | Path | None = None,
) -> Editor:
    """Construct an editor by name or preset name, then apply a YAML file and overrides."""
    entries = available_editors()
    if name not in entries:
        raise ValueError(f"Unknown editor '{name}'. Available: {', '.join(entries)}.")
    entry = entries[name]
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def add(new: Mapping[str, Any], source: str) -> None:
        values.update(new)
        sources.update(dict.fromkeys(new, source))

    if entry.source == "preset":
        editor_name, preset_values, _ = read_preset(entry.target)
        if editor_name not in entries or entries[editor_name].source == "preset":
            raise ValueError(f"Preset '{name}' names unknown editor '{editor_name}'.")
        entry = entries[editor_name]
        add(preset_values, f"in preset {entries[name].target}")
    if config_file is not None:
        add(read_config_file(config_file), f"in {config_file}")
    add(overrides or {}, "given as an override")
    editor_class = entry.load()
    if not (isinstance(editor_class, type) and issubclass(editor_class, Editor)):
        raise TypeError(f"Editor '{name}' ({entry.target}) is not a ripplebench Editor subclass.")
    return editor_class(make_config(editor_class.config_class, values, f"editor '{entry.name}'", sources))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Config values from a YAML file: a plain mapping, or a preset's `config:` block."""
    data = _read_yaml(path)
    return dict(data.get("config") or {}) if "editor" in data else data
