"""Plugins through entry points: third-party editors (the README example), `ripplebench` commands, and
ripplebench's own model and tasks for lm-eval."""

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
    (info / "entry_points.txt").write_text("[ripplebench.editors]\nrepeat = my_editors:Repeat\n")
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


def test_every_command_is_found_through_the_commands_entry_point_group_in_help_order(capsys):
    from ripplebench.harness.cli import HELP_ORDER, main

    with pytest.raises(SystemExit):
        main(["--help"])
    listed = re.search(r"\{([^}]*)\}", capsys.readouterr().out).group(1).split(",")
    assert listed == list(HELP_ORDER)
    assert listed == [
        "editors",
        "models",
        "train-editor",
        "data",
        "judge",
        "compare",
        "leaderboard",
        "sft-qa",
        "prepare-embedded",
        "sweep",
    ]


def test_another_package_adds_a_command_with_the_same_add_parser_convention(tmp_path, monkeypatch, capsys):
    from ripplebench.harness.cli import main

    (tmp_path / "my_commands.py").write_text(
        "def add_parser(subparsers):\n"
        "    parser = subparsers.add_parser('hello', help='say hello')\n"
        "    parser.set_defaults(run=lambda args: print('hello') or 0)\n"
    )
    info = tmp_path / "my_commands-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-commands\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ripplebench.commands]\nhello = my_commands\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["hello"]) == 0 and capsys.readouterr().out == "hello\n"


def test_lm_eval_finds_the_model_and_tasks_through_entry_points_or_the_fallback_hook():
    from importlib.metadata import entry_points

    import ripplebench.tasks
    from ripplebench.harness.lm_eval_plugin import needs_hook
    from ripplebench.harness.lm_model import EditingLM
    from ripplebench.harness.registration import TASKS_DIR

    assert entry_points(group="lm_eval.models")["editing"].load() is EditingLM
    tasks = entry_points(group="lm_eval.tasks")["ripplebench"].load()
    assert tasks is ripplebench.tasks and Path(tasks.__file__).resolve().parent == TASKS_DIR
    # The hook is the fallback for lm-eval 0.4, which reads no plugin entry points.
    assert needs_hook("0.4.13") and needs_hook("0.4.9.post1") and not needs_hook("0.5.0") and not needs_hook("1.0")
