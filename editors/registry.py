"""Finding editors by name: built-ins, third-party entry points, and YAML presets.

Third-party packages add editors without touching ripplebench by declaring an entry point in
the group `ripplebench.editors` whose value is an `Editor` subclass. A preset is a YAML file
in `editors/presets/` naming an editor and config values, e.g. `cpt_mid_upper`.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Mapping

import yaml

from ripplebench.core.settings import build_dataclass

from .base import Editor

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
    return editor_class(build_dataclass(editor_class.config_class, values, f"editor '{entry.name}'", sources))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Config values from a YAML file: a plain mapping, or a preset's `config:` block."""
    data = _read_yaml(path)
    return dict(data.get("config") or {}) if "editor" in data else data
