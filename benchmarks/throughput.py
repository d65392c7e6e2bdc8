"""Throughput: ripplebench's engine against a reference-style edit loop, on the same edits.

    .venv/bin/python benchmarks/throughput.py --quick --out results/throughput_quick.json

Both loops run in this process on the first Controlled RippleEdit `test_id` instances, with
the same editor implementation and the same decoding function (greedy, 20 new tokens, cut at
a newline), so what differs is the loop. The reference loop mirrors the evaluation code of
EasyEdit and PropMEND: copy the whole state_dict, apply the edit, generate one question at a
time, load the state_dict back. ripplebench's engine (harness/engine.py) snapshots only the
tensors an editor touches, answers in length-sorted batches, and answers the questions of
many edit groups in shared batches when the editor does not change weights.

Both loops must give the same greedy answers: any difference is listed and the script exits
with status 1. MEMIT's statistics cache is measured too: the first edit's edit phase with an
empty cache folder (cold: the statistics are computed) against the same edit by the engine's
fresh editor reading the files that edit wrote (warm: a repeat run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from ripplebench.core.io import write_json  # noqa: E402
from ripplebench.core.models import LoadedModel, load_model, resolve_model  # noqa: E402
from ripplebench.core.prompts import render_prompt, resolve_prompt_format  # noqa: E402
from ripplebench.editors.base import Edit, Editor  # noqa: E402
from ripplebench.editors.locate.stats import forget_read_statistics  # noqa: E402
from ripplebench.editors.registry import build_editor  # noqa: E402
from ripplebench.harness.backends.hf import greedy_generate  # noqa: E402
from ripplebench.harness.documents import edits_from_doc  # noqa: E402
from ripplebench.harness.engine import EditThenQuery, Query, group_by_edits, peak_rss_mb, timing_stats  # noqa: E402
from ripplebench.tasks.controlled_ripple.utils import read_documents, split_file  # noqa: E402

EDITORS = ("none", "prepend", "memit_smollm2", "propmend_smollm2_cpu", "cpt")
PHASES = ("edit_seconds", "answer_seconds", "revert_seconds")
# --quick: MEMIT with one prefix, 5 v* steps and statistics on 200 documents, so that an edit
# takes seconds, not minutes, on a shared CPU; the full mode runs the preset as it is.
QUICK_MEMIT = {"prefix_count": 1, "v_num_grad_steps": 5, "mom2_n_samples": 200}


def load_queries(edits: int) -> list[Query]:
    """The questions of the first `edits` test_id instances, as lm-eval hands them to the engine."""
    docs = read_documents(split_file("id"))
    wanted = list(dict.fromkeys(doc["edit_id"] for doc in docs))[:edits]
    return [
        Query(edits_from_doc(doc, f"test_id document {number}"), doc["question"], ("\n",), 20)
        for number, doc in enumerate(docs)
        if doc["edit_id"] in wanted
    ]


def reset_peak_rss() -> bool:
    """Start a new peak-RSS measurement (Linux: /proc/self/clear_refs); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def reference_loop(
    loaded: LoadedModel, editor: Editor, prompt_format: str, queries: Sequence[Query]
) -> tuple[list[str], list[dict[str, float]]]:
    """EasyEdit/PropMEND-style: whole-model snapshot, edit, one question at a time, reload."""
    answers = [""] * len(queries)
    stats = []
    model, tokenizer = loaded.model, loaded.tokenizer
    for edits, indices in group_by_edits(queries).items():
        started = time.perf_counter()
        state = {name: value.detach().clone() for name, value in model.state_dict().items()}
        handle = editor.apply(loaded, edits)
        applied = time.perf_counter()
        for index in indices:
            query = queries[index]
            prompt = render_prompt(prompt_format, tokenizer, query.question, handle.context)
            (answers[index],) = greedy_generate(
                model,
                tokenizer,
                [prompt],
                max_new_tokens=query.max_new_tokens,
                stops=query.stops,
                batch_size=1,
                add_special_tokens=prompt_format != "chat",
            )
        answered = time.perf_counter()
        model.load_state_dict(state)
        if hasattr(handle, "adapter"):  # a LoRA wrapper lives outside the state_dict copy
            editor.revert(handle)
        stats.append(timing_stats(started, applied, answered, time.perf_counter()))
    return answers, stats


def engine_loop(
    loaded: LoadedModel, editor: Editor, prompt_format: str, queries: Sequence[Query], batch_size: int
) -> tuple[list[str], list[dict[str, Any]]]:
    engine = EditThenQuery(loaded, editor, prompt_format, batch_size)
    return engine.run(queries, progress=False), engine.edit_stats


def measure(loop, groups: int) -> dict[str, Any]:
    """Run one loop; its answers, edits per minute, summed phase seconds and peak RSS."""
    fresh_peak = reset_peak_rss()
    started = time.perf_counter()
    answers, stats = loop()
    wall = time.perf_counter() - started
    totals = {phase: round(sum(record[phase] for record in stats), 3) for phase in PHASES}
    return {
        "answers": answers,
        "wall_seconds": round(wall, 3),
        "edits_per_minute": round(groups * 60 / wall, 2),
        **totals,
        "revert_pct_of_edit": round(100 * totals["revert_seconds"] / max(totals["edit_seconds"], 1e-9), 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_rss_is_this_loop": fresh_peak,
        "first_edit_seconds": stats[0]["edit_seconds"],
    }


def cold_edit_seconds(loaded: LoadedModel, name: str, overrides: dict[str, Any], edits: tuple[Edit, ...]) -> float:
    """Edit-phase seconds of one edit whose statistics cache folder is empty (they are computed)."""
    editor = build_editor(name, overrides)
    started = time.perf_counter()
    handle = editor.apply(loaded, edits)
    seconds = time.perf_counter() - started
    editor.revert(handle)
    forget_read_statistics()  # the engine that runs next starts like a repeat run: files only
    return seconds


def tiny_propmend_checkpoint(folder: Path) -> Path:
    """A PropMEND hypernetwork for SmolLM2 trained for one step (the preset's shape, not its
    quality): the benchmark measures speed, which does not depend on how well it edits."""
    from ripplebench.editors.mend.config import load_train_config
    from ripplebench.harness.hypernet_training import meta_trainer

    config = load_train_config(
        "propmend_smollm2_cpu", {"max_steps": 1, "batch_size": 1, "val_instances": 1, "out_dir": str(folder)}
    )
    return Path(meta_trainer(config).train(progress=False))


def differences(queries: Sequence[Query], reference: list[str], engine: list[str]) -> list[dict[str, str]]:
    return [
        {"edit": queries[i].edits[0].id, "question": queries[i].question, "reference": ref, "engine": eng}
        for i, (ref, eng) in enumerate(zip(reference, engine))
        if ref != eng
    ]


def print_table(results: dict[str, dict[str, Any]], header: bool = True) -> None:
    columns = ("edits/min", "ratio", "edit s", "answer s", "revert s", "rev % edit", "peak MB")
    if header:
        print(f"{'editor':<22}{'loop':<11}" + "".join(f"{name:>11}" for name in columns))
    for name, row in results.items():
        for loop in ("reference", "engine"):
            r = row[loop]
            ratio = f"{row['ratio']:.2f}" if loop == "engine" else ""
            values = (
                f"{r['edits_per_minute']:.2f}",
                ratio,
                f"{r['edit_seconds']:.2f}",
                f"{r['answer_seconds']:.2f}",
                f"{r['revert_seconds']:.3f}",
                f"{r['revert_pct_of_edit']:.2f}",
                f"{r['peak_rss_mb']:.0f}",
            )
            print(f"{name:<22}{loop:<11}" + "".join(f"{value:>11}" for value in values), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few edits (minutes on 2 cores)")
    parser.add_argument("--edits", type=int, default=0, help="edit groups to run (default: 2 quick, 50 full)")
    parser.add_argument("--editors", default=",".join(EDITORS), help="comma-separated editors or presets")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument(
        "--checkpoint",
        default="",
        help="PropMEND checkpoint (default: the preset's, where it is trained here, else a 1-step one)",
    )
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--out", default="", help="write the results as JSON here")
    args = parser.parse_args(argv)
    edits = args.edits or (2 if args.quick else 50)
    names = [name.strip() for name in args.editors.split(",") if name.strip()]

    loaded = load_model(resolve_model(args.model))
    prompt_format = resolve_prompt_format("auto", loaded.tokenizer)
    queries = load_queries(edits)
    groups = list(group_by_edits(queries))
    greedy_generate(loaded.model, loaded.tokenizer, ["Warm-up."], max_new_tokens=2)
    scratch = Path(tempfile.mkdtemp(prefix="ripplebench-throughput-"))
    report: dict[str, Any] = {
        "model": args.model,
        "edits": len(groups),
        "questions": len(queries),
        "quick": args.quick,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "editors": {},
    }
    failed = False
    for name in names:
        settings: dict[str, Any] = {}
        if name.startswith("memit"):
            settings["cache_dir"] = str(scratch / "stats")  # empty: the first edit is cold
            if args.quick:
                settings.update(QUICK_MEMIT)
            cold = cold_edit_seconds(loaded, name, settings, groups[0])
        if name.startswith("propmend"):
            checkpoint = Path(args.checkpoint) if args.checkpoint else build_editor(name).checkpoint_path()
            trained = checkpoint is not None and checkpoint.is_file()
            settings["checkpoint"] = str(checkpoint if trained else tiny_propmend_checkpoint(scratch / "propmend"))
        print(f"[{name}] engine ...", file=sys.stderr, flush=True)
        engine = measure(
            lambda: engine_loop(loaded, build_editor(name, settings), prompt_format, queries, args.batch_size),
            len(groups),
        )
        print(f"[{name}] reference loop ...", file=sys.stderr, flush=True)
        reference = measure(
            lambda: reference_loop(loaded, build_editor(name, settings), prompt_format, queries), len(groups)
        )
        if name.startswith("memit"):  # the engine's first edit read the statistics the cold edit wrote
            warm = engine["first_edit_seconds"]
            report["memit_statistics_cache"] = {
                "cold_edit_seconds": round(cold, 3),
                "warm_edit_seconds": round(warm, 3),
                "cold_over_warm": round(cold / warm, 2),
            }
        different = differences(queries, reference.pop("answers"), engine.pop("answers"))
        failed |= bool(different)
        report["editors"][name] = {
            "settings": settings,
            "reference": reference,
            "engine": engine,
            "ratio": round(engine["edits_per_minute"] / reference["edits_per_minute"], 2),
            "different_answers": different,
        }
        print_table({name: report["editors"][name]}, header=name == names[0])  # as each finishes
        if args.out:
            write_json(Path(args.out), report)
    if "memit_statistics_cache" in report:
        cache = report["memit_statistics_cache"]
        print(
            f"MEMIT statistics cache: cold edit {cache['cold_edit_seconds']:.2f} s, warm {cache['warm_edit_seconds']:.2f} s "
            f"({cache['cold_over_warm']:.1f}x)"
        )
    shutil.rmtree(scratch, ignore_errors=True)
    for name, row in report["editors"].items():
        for item in row["different_answers"]:
            print(
                f"DIFFERENT [{name}] {item['edit']} {item['question']!r}: reference {item['reference']!r}, "
                f"engine {item['engine']!r}",
                file=sys.stderr,
            )
    if failed:
        print("FAIL: the engine and the reference loop gave different greedy answers (listed above).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
