"""Named YAML files shipped with ripplebench (editor presets, training configs, sweep specs):
a name is either a path to a file or the stem of a bundled file."""

from __future__ import annotations

from pathlib import Path


def bundled_names(folder: Path) -> list[str]:
    """The names of the YAML files bundled in `folder`, sorted."""
    return sorted(path.stem for path in folder.glob("*.yaml"))


def find_preset(name: str | Path, folder: Path, what: str, kind: str = "preset") -> Path:
    """`name` itself when it is a file, else `folder/<name>.yaml`; otherwise a ValueError that
    names `what` was asked for (e.g. "Sweep spec") and lists the bundled `kind`s."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    bundled = folder / f"{name}.yaml"
    if bundled.is_file():
        return bundled
    names = ", ".join(bundled_names(folder))
    raise ValueError(f"{what} '{name}' does not exist: pass a YAML file or a bundled {kind} ({names}).")
