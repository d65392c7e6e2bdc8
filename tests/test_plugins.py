"""Third-party editors through the `ripplebench.editors` entry-point group (the README example)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ripplebench.editors import Edit, available_editors, build_editor

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture()
def plugin_path(tmp_path, monkeypatch) -> Path:
    """Install the README's example editor as a test-only distribution on sys.path."""
    section = README.read_text().split("### Adding your own editor", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "my_editors.py").write_text(code)
    info = tmp_path / "my_editors-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-editors\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text('[ripplebench.editors]\nrepeat = my_editors:Repeat\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_entry_point_editors_are_discovered_and_usable(plugin_path, tiny):
    entry = available_editors()["repeat"]
    assert entry.source == "my-editors"
    editor = build_editor("repeat", {"times": 3})
    handle = editor.apply(tiny, [Edit(id="1", fact="Kenya is in Asia.")])
    assert handle.context == "Kenya is in Asia. " * 3 + "\n"
    editor.revert(handle)


def test_cli_lists_built_in_third_party_editors_and_presets(plugin_path):
    env = {**os.environ, "PYTHONPATH": str(plugin_path)}
    cli = Path(sys.executable).parent / "ripplebench"
    listing = subprocess.run([str(cli), "editors"], env=env, capture_output=True, text=True, check=True).stdout
    lines = {line.split()[0]: line for line in listing.splitlines()}
    assert "[built-in]" in lines["prepend"] and "[preset]" in lines["cpt_mid_upper"]
    assert "[my-editors]" in lines["repeat"] and "several times" in lines["repeat"]


def test_a_third_party_editor_cannot_shadow_a_built_in(tmp_path, monkeypatch):
    info = tmp_path / "evil-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evil\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ripplebench.editors]\ncpt = os:getcwd\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert available_editors()["cpt"].source == "built-in"
