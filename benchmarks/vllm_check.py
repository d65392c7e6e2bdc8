"""Check that backend=vllm answers exactly as backend=hf, and how much faster it decodes.

    python benchmarks/vllm_check.py --limit 40

Needs a CUDA GPU and vLLM (`pip install 'ripplebench[vllm]'`); exits with a message otherwise.
The embedded SmolLM2 (no hub needed) is loaded once on the GPU and vLLM started next to it.
For each editor, every edit group of the task's first --limit documents is applied once (the
edited tensors pushed into vLLM, as backend=vllm does), its questions are answered by both
backends in that same edited state, and the edit is reverted. Every differing answer is printed
with both texts; the exit status is 1 when any differs. The speed ratio is HF decoding time
over vLLM decoding time, edits excluded.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from typing import Sequence

DEFAULT_EDITORS = ("none", "prepend", "memit_smollm2", "cpt")


def unavailable() -> str | None:
    """Why this check cannot run here, or None."""
    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed: pip install 'ripplebench[vllm]' (on a CUDA machine)"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU is visible; vLLM and this check need one"
    return None


def task_queries(task: str, limit: int) -> list:
    """The task's first `limit` documents as engine queries, built as `--model editing` builds them."""
    from lm_eval.tasks import TaskManager, get_task_dict

    from ripplebench.harness.lm_model import query_from_request

    loaded = get_task_dict([task], TaskManager())[task]
    loaded.build_all_requests(limit=limit, rank=0, world_size=1)
    return [query_from_request(instance, 20) for instance in loaded.instances]


def compare(loaded, editor, backend, queries: Sequence, batch_size: int) -> tuple[list[tuple], float, float]:
    """Apply each edit group once, answer with both backends; (differences, hf seconds, vllm seconds)."""
    from ripplebench.core.prompts import resolve_prompt_format
    from ripplebench.harness.engine import EditThenQuery, group_by_edits

    prompt_format = resolve_prompt_format("auto", loaded.tokenizer)
    hf = EditThenQuery(loaded, editor, prompt_format, batch_size)
    fast = EditThenQuery(loaded, editor, prompt_format, batch_size, backend=backend)
    differences, hf_seconds, vllm_seconds = [], 0.0, 0.0
    for edits, indices in group_by_edits(queries).items():
        group = [queries[i] for i in indices]
        handle = fast.apply(edits)  # the HF copy and vLLM both edited
        try:
            started = time.perf_counter()
            hf_answers = hf.answer(group, handle.context)
            middle = time.perf_counter()
            vllm_answers = fast.answer(group, handle.context)
            vllm_seconds += time.perf_counter() - middle
            hf_seconds += middle - started
        finally:
            fast.revert(handle)
        for query, hf_answer, vllm_answer in zip(group, hf_answers, vllm_answers):
            if hf_answer != vllm_answer:
                differences.append((edits[0].id, query.question, hf_answer, vllm_answer))
    return differences, hf_seconds, vllm_seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="controlled_ripple_id")
    parser.add_argument("--limit", type=int, default=40, help="documents of the task")
    parser.add_argument("--editors", nargs="+", default=list(DEFAULT_EDITORS))
    parser.add_argument("--dtype", default="float32", help="of both copies (float32, bfloat16, ...)")
    parser.add_argument("--gpu_memory_utilization", type=float, default=0.3)
    parser.add_argument("--batch_size", type=int, default=16, help="of HF decoding")
    args = parser.parse_args(argv)
    reason = unavailable()
    if reason:
        print(f"vllm_check: cannot run: {reason}.", file=sys.stderr)
        return 2

    from ripplebench.core.models import load_model, resolve_model, weights_dir
    from ripplebench.editors import build_editor
    from ripplebench.harness.backends.vllm import VLLMBackend, VLLMSettings

    source = resolve_model("smollm2-135m")
    loaded = load_model(source, dtype=args.dtype, device="cuda")
    settings = VLLMSettings(gpu_memory_utilization=args.gpu_memory_utilization)
    backend = VLLMBackend.start(
        loaded, settings, folder=weights_dir(source), dtype=args.dtype, batch_size=args.batch_size
    )
    queries = task_queries(args.task, args.limit)
    print(f"{args.task}: {len(queries)} questions, dtype {args.dtype}")
    failed, total_hf, total_vllm = False, 0.0, 0.0
    for name in args.editors:
        differences, hf_seconds, vllm_seconds = compare(loaded, build_editor(name), backend, queries, args.batch_size)
        total_hf, total_vllm = total_hf + hf_seconds, total_vllm + vllm_seconds
        verdict = "identical" if not differences else f"{len(differences)} of {len(queries)} differ"
        print(
            f"{name:>14}: {verdict}; decoding hf {hf_seconds:.2f} s, vllm {vllm_seconds:.2f} s, "
            f"ratio {hf_seconds / max(vllm_seconds, 1e-9):.2f}x"
        )
        for edit_id, question, hf_answer, vllm_answer in differences:
            print(f"    edit {edit_id}: {question!r}\n        hf:   {hf_answer!r}\n        vllm: {vllm_answer!r}")
        failed = failed or bool(differences)
    print(f"speed ratio (hf / vllm decoding time, all editors): {total_hf / max(total_vllm, 1e-9):.2f}x")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
