"""`ripplebench prepare-embedded`: the embedded "-QA" model behind the alias `smollm2-135m-qa`.

The paper evaluates "-QA" models (Table 23): base models fine-tuned to answer briefly and to
know the single-hop facts the benchmark's questions build on. The embedded one is made with the
recipe measured in the README ("Fine-tuning editors and -QA models"), i.e.

    ripplebench sft-qa --model smollm2-135m --stage1 none --train-on-eval \
        --stage2-pairs 100000 --stage2-set lr=1e-5 --stage2-set epochs=3

stage 2 on every distinct single-hop pair of the Controlled RippleEdit training split, with no
stage 1 (TriviaQA cannot be downloaded offline; skipping it always keeps the model the same
whether or not the hub is reachable). It is written once to `$RIPPLEBENCH_CACHE/models/
smollm2-135m-qa` (through a temporary folder) with a model card, README.md; reruns reuse it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ripplebench.core.models import ALIASES, load_model, resolve_model
from ripplebench.core.paths import CONTROLLED_RIPPLE_DATA_DIR
from ripplebench.core.prompts import resolve_prompt_format
from ripplebench.editors.training import TrainingSettings
from ripplebench.harness.data.controlled_ripple.splits import SPLITS, split_path
from ripplebench.harness.sft_qa import (
    CONTROLLED_RIPPLE_TRAIN,
    RIPPLE_QA_SETTINGS,
    prepare_qa_model,
    question_key,
    read_qa_file,
    select_pairs,
)

ALIAS = "smollm2-135m-qa"
BASE_MODEL = "smollm2-135m"
STAGE2_PAIRS = 100_000  # more than the training split has: every distinct pair
STAGE2_SETTINGS = replace(RIPPLE_QA_SETTINGS, lr=1e-5, epochs=3)
VALIDATION = split_path(CONTROLLED_RIPPLE_DATA_DIR, "validation")
EVAL_QUESTIONS = 450  # the single-hop questions of the first 100 validation instances (README)


def is_built(folder: Path) -> bool:
    return (folder / "config.json").is_file()


def trained_share(trained: set[str], data_dir: Path) -> dict[str, tuple[int, int]]:
    """Per evaluation split in `data_dir`: (distinct single-hop questions trained on, distinct ones)."""
    shares = {}
    for split in SPLITS:
        path = split_path(data_dir, split)
        if split != "train" and path.is_file():
            questions = {question_key(pair.question) for pair in read_qa_file(path)}
            shares[split] = (len(questions & trained), len(questions))
    return shares


def model_card(report: dict[str, Any], shares: dict[str, tuple[int, int]]) -> str:
    """README.md of the built model: what it was trained on, why, and its validation EM."""
    stage2 = report["stage2"]
    settings = stage2["settings"]
    lines = [
        f"# {ALIAS}: the embedded -QA model of ripplebench",
        "",
        f"Built by `ripplebench prepare-embedded` from `{report['base_model']}`: supervised fine-tuning on "
        f"{stage2['pairs']} single-hop question-answer pairs (every distinct `unalias_question`/`answer` of "
        f"`{Path(stage2['source']).name}`), loss on the answer only, lr {settings['lr']:g}, epochs {settings['epochs']}, "
        f"batch {settings['batch_size']}, seed {report['seed']}, questions in the `{report['prompt_format']}` "
        "prompt format. No TriviaQA stage: it cannot be downloaded offline, and leaving it out keeps the "
        "model the same either way.",
        "",
        "## The evaluation splits' single-hop facts were trained on",
        "",
        "Controlled RippleEdit asks whether an edited model combines a new fact with what it already knows. "
        "The benchmark therefore asks a model that knows the single-hop facts its questions build on, as "
        "the paper does (its -QA models, Table 23: stage 2 reinforces the facts about the benchmark's real "
        "entities and relations). These single-hop questions are the tasks' specificity questions, so "
        "specificity on the in-domain splits measures retention of trained facts, not general knowledge; "
        "the out-of-domain splits' entities or relations are not in the training split, so their facts "
        "were not trained on. Distinct single-hop questions of each split that were trained on:",
        "",
        "| split | trained on |",
        "|---|---|",
        *(f"| {split} | {hit} of {total} |" for split, (hit, total) in shares.items()),
        "",
        "## Validation exact match",
        "",
    ]
    if "after" in report:
        before, after = report["before"], report["after"]
        lines += [
            f"On the first {after['questions']} single-hop questions of `{Path(report['evaluation_file']).name}` "
            f"({report['evaluation_questions_trained_on']} of them trained on), greedy answers of at most 20 "
            "tokens cut at the first newline, exact match as the tasks score it:",
            "",
            "| model | exact match | mean answer length (words) |",
            "|---|---|---|",
            f"| {report['base_model']} | {before['exact_match']:.3f} | {before['mean_answer_words']} |",
            f"| {ALIAS} | {after['exact_match']:.3f} | {after['mean_answer_words']} |",
        ]
    else:
        lines.append("Not measured (built with `--eval-questions 0`).")
    return "\n".join(lines) + "\n"


def prepare_embedded(
    *,
    base: str = BASE_MODEL,
    output: str | Path | None = None,
    stage2: str | Path = CONTROLLED_RIPPLE_TRAIN,
    validation: str | Path = VALIDATION,
    eval_questions: int = EVAL_QUESTIONS,
    settings: TrainingSettings = STAGE2_SETTINGS,
    device: str = "cpu",
    seed: int = 0,
    log=print,
) -> Path:
    """Build the embedded -QA model into `output` (default: the alias's cache folder), or reuse it."""
    output = Path(output) if output else ALIASES[ALIAS].path()  # type: ignore[union-attr]
    if is_built(output):
        log(f"{ALIAS} is already built in {output}; remove that folder to build it again.")
        return output
    trained = {question_key(pair.question) for pair in select_pairs(read_qa_file(stage2), STAGE2_PAIRS, seed)}
    shares = trained_share(trained, Path(stage2).parent)
    loaded = load_model(resolve_model(base), device=device)
    try:
        return prepare_qa_model(
            loaded,
            output,
            prompt_format=resolve_prompt_format("auto", loaded.tokenizer),
            stage1="none",
            stage2=stage2,
            stage2_pairs=STAGE2_PAIRS,
            evaluation=validation if eval_questions else None,
            evaluation_limit=eval_questions,
            train_on_evaluation=True,
            stage2_settings=settings,
            seed=seed,
            model_card=lambda report: model_card(report, shares),
            log=log,
        )
    except ValueError:
        if is_built(output):  # built by another run in the meantime: the same recipe
            return output
        raise
