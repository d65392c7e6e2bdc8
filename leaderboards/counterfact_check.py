"""Rewrite check for locate-then-edit editors on 20 counterfactual atomic facts.

    python -m ripplebench.leaderboards.counterfact_check --editors memit alphaedit jeep

All 20 facts (leaderboards/data/counterfact_20.jsonl) are applied as one batch. Teacher-forced
accuracy: a fact counts when the first token of its target is the model's top prediction after
the prompt (rewrite) or after a paraphrase of it; `unrelated` is the share of unrelated prompts
(other subjects, same relation) whose top prediction the edit leaves unchanged. The unedited
model's rewrite and paraphrase accuracy are printed for comparison. The model is reverted after
each editor and checked to be bit-for-bit the original.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ripplebench.core.io import read_jsonl
from ripplebench.core.models import LoadedModel, load_model, resolve_model
from ripplebench.core.settings import parse_assignments
from ripplebench.editors import AtomicFact, Edit, build_editor

DATA = Path(__file__).parent / "data" / "counterfact_20.jsonl"


def read_facts(path: Path = DATA) -> list[dict[str, str]]:
    """The counterfactual records: prompt, subject, target, true_target, paraphrase, unrelated."""
    return read_jsonl(path)


def as_edits(records: Sequence[dict[str, str]]) -> list[Edit]:
    """One edit per record, its single atomic fact being the counterfactual."""
    return [
        Edit(
            id=record["id"],
            fact=f"{record['prompt']} {record['target']}.",
            atomic_facts=(AtomicFact(record["prompt"], record["target"], record["subject"]),),
        )
        for record in records
    ]


@torch.no_grad()
def top_tokens(loaded: LoadedModel, prompts: Sequence[str]) -> list[int]:
    """The most likely next token after each prompt (raw text)."""
    tokenizer = loaded.tokenizer
    encoded = tokenizer(list(prompts), return_tensors="pt", padding=True).to(loaded.device)
    logits = loaded.model(**encoded).logits  # left padding: the last column is each prompt's end
    return logits[:, -1].argmax(-1).tolist()


def first_target_token(loaded: LoadedModel, target: str) -> int:
    return loaded.tokenizer(" " + target, add_special_tokens=False)["input_ids"][0]


def accuracy(loaded: LoadedModel, records: Sequence[dict[str, str]], field: str) -> float:
    """Share of records whose target's first token is the top prediction after `field`."""
    predicted = top_tokens(loaded, [record[field] for record in records])
    wanted = [first_target_token(loaded, record["target"]) for record in records]
    return sum(p == w for p, w in zip(predicted, wanted)) / len(records)


def parameters_digest(model: torch.nn.Module) -> str:
    """A digest of every parameter's exact bytes."""
    digest = hashlib.sha256()
    for parameter in model.parameters():
        digest.update(parameter.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_editor(loaded: LoadedModel, name: str, overrides: dict[str, Any], records) -> dict[str, Any]:
    """Apply all facts with one editor, measure, revert; returns the numbers."""
    editor = build_editor(name, overrides)
    unrelated_before = top_tokens(loaded, [record["unrelated"] for record in records])
    digest = parameters_digest(loaded.model)
    start = time.perf_counter()
    handle = editor.apply(loaded, as_edits(records))
    seconds = time.perf_counter() - start
    try:
        unrelated_after = top_tokens(loaded, [record["unrelated"] for record in records])
        result = {
            "editor": name,
            "overrides": overrides,
            "rewrite": accuracy(loaded, records, "prompt"),
            "paraphrase": accuracy(loaded, records, "paraphrase"),
            "unrelated_unchanged": sum(a == b for a, b in zip(unrelated_before, unrelated_after)) / len(records),
            "edit_seconds": round(seconds, 1),
            "stats": {k: v for k, v in handle.stats.items() if k != "mom2_files"},
        }
    finally:
        editor.revert(handle)
    if parameters_digest(loaded.model) != digest:
        raise RuntimeError(f"Reverting {name} did not restore the model.")
    return result


def overrides_for(editor: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The `--set` values that apply to one editor: unprefixed ones and `editor.field` ones."""
    chosen = {}
    for key, value in settings.items():
        target, _, field = key.rpartition(".")
        if target in ("", editor):
            chosen[field] = value
    return chosen


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--editors", nargs="+", default=["memit", "alphaedit", "jeep"])
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="[EDITOR.]FIELD=VALUE",
        help="editor config overrides, for every editor or (with EDITOR.) for one",
    )
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    try:
        settings = parse_assignments(args.set)
    except ValueError as error:
        parser.error(str(error))
    loaded = load_model(resolve_model(args.model))
    records = read_facts()
    results = {
        "model": args.model,
        "facts": len(records),
        "unedited": {
            "rewrite": accuracy(loaded, records, "prompt"),
            "paraphrase": accuracy(loaded, records, "paraphrase"),
        },
        "editors": [check_editor(loaded, name, overrides_for(name, settings), records) for name in args.editors],
    }
    print(json.dumps(results, indent=2))
    if args.output:
        args.output.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
