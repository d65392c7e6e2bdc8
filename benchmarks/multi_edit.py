"""Multi-edit against single edits on the same questions (the paper's Table 3 setting).

    .venv/bin/python benchmarks/multi_edit.py --editors prepend,memit_smollm2 --out results/multi

Takes the instances of one edit group of `controlled_ripple_<split>_multi10` (the first by
default; groups as the task makes them, `group_seed` 0) and runs `lm_eval --model editing`
three times per editor on their questions: `single` (`controlled_ripple_<split>`, each instance
edited alone), `multi10` (the group's 10 edits applied together) and `multi20` (the 20-edit
group of `_multi20` that holds them: 20 edits applied, only these instances' questions asked).
lm-eval's `--samples` selects the documents, so the three runs ask exactly the same questions.
A run whose results exist is not repeated: rerun the same command to continue.

Prints, per editor and setting, efficacy and specificity (exact match), the paired bootstrap
of each multi setting against `single` (paired by instance, question and kind), and lm-eval's
evaluation time; `--out` also gets `table.json`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from ripplebench.core.io import read_jsonl, write_json
from ripplebench.harness.data.controlled_ripple.splits import TEST_TASK_SPLITS, task_name
from ripplebench.harness.documents import PAIRING_FIELDS
from ripplebench.harness.runs import find_runs, load_run
from ripplebench.harness.significance import paired_bootstrap
from ripplebench.tasks.controlled_ripple.utils import read_documents, read_group_documents, split_file

SETTINGS = {"single": ("", 0), "multi10": ("_multi10", 10), "multi20": ("_multi20", 20)}
METRICS = ("efficacy", "specificity")


def setting_documents(split: str, setting: str) -> tuple[str, list[dict[str, Any]]]:
    """The task name of a setting and its documents, in lm-eval's order."""
    suffix, size = SETTINGS[setting]
    path = split_file(split)
    return task_name(split, suffix), read_group_documents(path, size) if size else read_documents(path)


def group_instances(split: str, group: int) -> list[str]:
    """The instances (edit ids) of group number `group` of the split's multi10 task."""
    _, docs = setting_documents(split, "multi10")
    wanted = f"g{group:03d}"
    members = list(dict.fromkeys(doc["edit_id"] for doc in docs if doc["group_id"] == wanted))
    if not members:
        groups = len({doc["group_id"] for doc in docs})
        raise ValueError(f"--group {group} does not exist: the {split} split has multi10 groups 1-{groups}.")
    return members


def run_setting(editor: str, split: str, setting: str, members: list[str], args: argparse.Namespace) -> Path:
    """Run lm_eval for one (editor, setting) unless its output folder already holds a run."""
    folder = Path(args.out) / editor / setting
    if folder.is_dir() and any(run.results for run in _runs(folder)):
        print(f"[{editor} {setting}] done before: {folder}", file=sys.stderr, flush=True)
        return folder
    task, docs = setting_documents(split, setting)
    indices = [number for number, doc in enumerate(docs) if doc["edit_id"] in members]
    command = [
        str(Path(sys.executable).with_name("lm_eval")), "--model", "editing",
        "--model_args", f"model={args.model},editor={editor}", "--tasks", task,
        "--samples", json.dumps({task: indices}), "--batch_size", str(args.batch_size),
        "--log_samples", "--output_path", str(folder),
    ]  # fmt: skip
    print(f"[{editor} {setting}] {len(indices)} documents of {task} ...", file=sys.stderr, flush=True)
    subprocess.run(command, check=True)
    return folder


def _runs(folder: Path) -> list:
    try:
        return find_runs(folder)
    except FileNotFoundError:
        return []


def scores(folder: Path) -> tuple[dict[tuple, dict[str, float]], float]:
    """Per question (instance, question id, kind), its metrics; and lm-eval's evaluation seconds."""
    run = load_run(folder)
    per_question = {}
    for path in run.samples.values():
        for record in read_jsonl(path):
            key = tuple(record["doc"][name] for name in PAIRING_FIELDS)
            per_question[key] = {m: float(record[m]) for m in METRICS if isinstance(record.get(m), (int, float))}
    results = json.loads(run.results.read_text()) if run.results else {}
    return per_question, float(results.get("total_evaluation_time_seconds") or 0.0)


def summarise(folders: dict[str, Path]) -> dict[str, Any]:
    """Means per setting and the paired bootstrap of each multi setting against single."""
    loaded = {setting: scores(folder) for setting, folder in folders.items()}
    single = loaded["single"][0]
    table: dict[str, Any] = {}
    for setting, (per_question, seconds) in loaded.items():
        if set(per_question) != set(single):
            raise ValueError(f"{folders[setting]} and {folders['single']} do not hold the same questions.")
        row: dict[str, Any] = {"minutes": round(seconds / 60, 1)}
        for metric in METRICS:
            keys = sorted(k for k in single if metric in single[k])
            values = [per_question[k][metric] for k in keys]
            row[metric] = {"n": len(values), "mean": round(sum(values) / len(values), 4)}
            if setting != "single":
                test = paired_bootstrap(values, [single[k][metric] for k in keys])
                row[metric].update(diff=round(test.diff, 4), p=round(test.p, 4))
        table[setting] = row
    return table


def markdown(tables: dict[str, dict[str, Any]]) -> str:
    """One row per editor: efficacy / specificity per setting (multi: difference to single and p)."""
    header = (
        "| editor | " + " | ".join(f"{s} eff / spec" for s in SETTINGS) + " | minutes " + " / ".join(SETTINGS) + " |"
    )
    lines = [header, "|---" * (len(SETTINGS) + 2) + "|"]
    for editor, table in tables.items():
        cells = []
        for setting in SETTINGS:
            parts = []
            for metric in METRICS:
                cell = table[setting][metric]
                test = f" ({cell['diff']:+.2f}, p={cell['p']:.2f})" if "p" in cell else ""
                parts.append(f"{cell['mean']:.2f}{test}")
            cells.append(" / ".join(parts))
        minutes = " / ".join(f"{table[s]['minutes']:.1f}" for s in SETTINGS)
        lines.append(f"| `{editor}` | " + " | ".join(cells) + f" | {minutes} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--editors", default="prepend,cpt,memit_smollm2,alphaedit_smollm2,propmend_smollm2_cpu,rledit_smollm2_cpu"
    )
    parser.add_argument("--split", default="id", choices=tuple(TEST_TASK_SPLITS))
    parser.add_argument("--group", type=int, default=1, help="which multi10 group's instances (1-based)")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--out", default="results/multi")
    args = parser.parse_args(argv)
    members = group_instances(args.split, args.group)
    print(f"instances: {', '.join(members)}", file=sys.stderr)
    tables = {}
    for editor in (name.strip() for name in args.editors.split(",") if name.strip()):
        folders = {setting: run_setting(editor, args.split, setting, members, args) for setting in SETTINGS}
        tables[editor] = summarise(folders)
        write_json(
            Path(args.out) / "table.json",
            {"split": args.split, "group": args.group, "instances": members, "editors": tables},
        )
    print(markdown(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
