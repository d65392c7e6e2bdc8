"""`ripplebench sft-qa`: the paper's "-QA" models (Appendix G, Table 23).

A base model is taught to answer questions briefly in two supervised stages, loss on the
answer only:

1. TriviaQA (rc), Table 23 (a): lr 1e-5, 2 epochs, batch 128, max length 256, warmup 3%.
   Read through `datasets` when the Hugging Face hub is reachable, or from a local JSON-lines
   file; skipped, with a note, when neither is available.
2. 500 single-hop QA pairs about the benchmark's real entities and relations, Table 23 (b):
   lr 2e-6, 2 epochs, batch 10. Offline default: the `unalias_question`/`answer` pairs of the
   Controlled RippleEdit training split.

Questions are formatted exactly as the `editing` model will ask them (the prompt format,
e.g. the chat template), and each answer ends with the end-of-sequence token. The result is
written to a temporary folder next to the output and renamed into place when complete, so an
interrupted run never leaves a half-written model behind.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ripplebench.core.io import atomic_folder, iter_jsonl
from ripplebench.core.models import LoadedModel
from ripplebench.core.paths import CONTROLLED_RIPPLE_DATA_DIR
from ripplebench.core.prompts import render_prompt
from ripplebench.core.settings import build_dataclass, parse_assignments
from ripplebench.editors.training import Example, TrainingSettings, train
from ripplebench.harness.data.controlled_ripple.splits import split_path

TRIVIAQA = "triviaqa"
TRIVIAQA_HUB = ("mandarjoshi/trivia_qa", "rc.nocontext")
CONTROLLED_RIPPLE_TRAIN = split_path(CONTROLLED_RIPPLE_DATA_DIR, "train")
TRIVIAQA_SETTINGS = TrainingSettings(
    lr=1e-5, epochs=2, batch_size=128, max_length=256, weight_decay=0.1, max_grad_norm=1.0, warmup_ratio=0.03
)
RIPPLE_QA_SETTINGS = replace(TRIVIAQA_SETTINGS, lr=2e-6, batch_size=10)


@dataclass(frozen=True)
class QAPair:
    question: str
    answers: tuple[str, ...]  # the first is the one trained on; all count for exact match


def read_qa_file(path: str | Path) -> list[QAPair]:
    """QA pairs from JSON lines: records with `question` and `answer` (a string or a list of
    accepted answers), or Controlled RippleEdit instances, whose single-hop questions
    (`unalias_question`, `answer`, `answer_aliases`) are used."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"QA file '{path}' does not exist.")
    pairs = []
    for where, record in iter_jsonl(path):
        if "questions" in record:
            pairs.extend(
                QAPair(q["unalias_question"], (q["answer"], *q.get("answer_aliases", ()))) for q in record["questions"]
            )
        elif "question" in record and "answer" in record:
            answer = record["answer"]
            pairs.append(QAPair(record["question"], tuple(answer) if isinstance(answer, list) else (str(answer),)))
        else:
            raise ValueError(
                f"{where}: expected 'question' and 'answer' fields, or a Controlled "
                "RippleEdit instance with 'questions'."
            )
    return pairs


def triviaqa_pairs() -> list[QAPair] | None:
    """TriviaQA (rc) training questions through `datasets`, or None when it cannot be loaded."""
    try:
        import datasets

        rows = datasets.load_dataset(*TRIVIAQA_HUB, split="train")
    except Exception:  # offline, or the hub refused: the caller reports the skip
        return None
    return [QAPair(row["question"], (row["answer"]["value"], *row["answer"]["aliases"])) for row in rows]


def override_settings(
    settings: TrainingSettings, assignments: Sequence[str], option: str = "--set"
) -> TrainingSettings:
    """Apply "field=value" strings (e.g. "lr=1e-5", "epochs=3", given with `option`) to training settings."""
    changes = parse_assignments(assignments, option)
    return build_dataclass(TrainingSettings, {**asdict(settings), **changes}, f"the training settings ({option})")


def question_key(question: str) -> str:
    """A question as compared for duplicates: lower case, runs of whitespace as one space."""
    return " ".join(question.lower().split())


def select_pairs(pairs: Iterable[QAPair], count: int | None, seed: int, exclude: Iterable[QAPair] = ()) -> list[QAPair]:
    """Distinct questions, minus those in `exclude`, shuffled with `seed`, the first `count`."""
    held_out = {question_key(pair.question) for pair in exclude}
    distinct: dict[str, QAPair] = {}
    for pair in pairs:
        if question_key(pair.question) not in held_out:
            distinct.setdefault(question_key(pair.question), pair)
    chosen = list(distinct.values())
    random.Random(seed).shuffle(chosen)
    return chosen if count is None else chosen[:count]


def qa_examples(loaded: LoadedModel, pairs: Sequence[QAPair], prompt_format: str) -> list[Example]:
    """Training examples: the question as the model will be asked it, then the answer."""
    separator = "" if prompt_format == "chat" else " "
    return [
        Example(
            render_prompt(prompt_format, loaded.tokenizer, pair.question),
            separator + pair.answers[0],
            special_tokens=prompt_format != "chat",
        )
        for pair in pairs
    ]


def evaluate_qa(
    loaded: LoadedModel, pairs: Sequence[QAPair], prompt_format: str, batch_size: int = 16
) -> dict[str, Any]:
    """Exact match and mean answer length (words) of greedy answers, decoded as the tasks do
    (at most 20 new tokens, cut at the first newline)."""
    from ripplebench.editors.registry import build_editor
    from ripplebench.harness.engine import EditThenQuery, Query
    from ripplebench.harness.metrics import exact_match

    engine = EditThenQuery(loaded, build_editor("none"), prompt_format, batch_size)
    answers = engine.answer([Query((), pair.question, ("\n",), 20) for pair in pairs], "")
    scores = [exact_match(pair.question, answer, pair.answers) for pair, answer in zip(pairs, answers)]
    return {
        "questions": len(pairs),
        "exact_match": round(sum(scores) / max(len(scores), 1), 4),
        "mean_answer_words": round(sum(len(a.split()) for a in answers) / max(len(answers), 1), 2),
        "examples": [{"question": p.question, "answer": a} for p, a in list(zip(pairs, answers))[:5]],
    }


def fine_tune(loaded: LoadedModel, pairs: Sequence[QAPair], settings: TrainingSettings, prompt_format: str) -> int:
    """One SFT stage on every parameter; returns the tokens processed."""
    examples = qa_examples(loaded, pairs, prompt_format)
    parameters = list(loaded.model.parameters())
    return train(
        loaded.model, loaded.tokenizer, examples, parameters, settings, add_eos=True, progress=True, shuffle=True
    )


def save_model(loaded: LoadedModel, output: str | Path, report: dict[str, Any], card: str = "") -> Path:
    """Save model, tokenizer, `sft_qa.json` and the model card `card` (README.md, if given) to
    `output` through a temporary folder."""
    output = Path(output).expanduser().resolve()
    if output.exists():
        raise ValueError(f"Output folder '{output}' already exists; choose another or remove it.")
    with atomic_folder(output) as staging:
        loaded.model.save_pretrained(staging)
        loaded.tokenizer.save_pretrained(staging)
        (staging / "sft_qa.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        if card:
            (staging / "README.md").write_text(card)
    return output


def stage_one_pairs(source: str, count: int | None, seed: int) -> tuple[list[QAPair], str]:
    """Stage-1 pairs and a line saying where they came from (or why the stage is skipped)."""
    if source == "none":
        return [], "stage 1 skipped (--stage1 none)"
    if source == TRIVIAQA:
        pairs = triviaqa_pairs()
        if pairs is None:
            return [], (
                f"stage 1 skipped: TriviaQA ({'/'.join(TRIVIAQA_HUB)}) could not be loaded through "
                "`datasets` (offline?). Pass --stage1 FILE.jsonl with question/answer records to run it."
            )
        return select_pairs(pairs, count, seed), f"stage 1 on TriviaQA rc ({'/'.join(TRIVIAQA_HUB)})"
    return select_pairs(read_qa_file(source), count, seed), f"stage 1 on {source}"


def prepare_qa_model(
    loaded: LoadedModel,
    output: str | Path,
    *,
    prompt_format: str,
    stage1: str = TRIVIAQA,
    stage1_pairs: int | None = None,
    stage2: str | Path = CONTROLLED_RIPPLE_TRAIN,
    stage2_pairs: int = 500,
    evaluation: str | Path | None = None,
    evaluation_limit: int | None = None,
    train_on_evaluation: bool = False,
    stage1_settings: TrainingSettings = TRIVIAQA_SETTINGS,
    stage2_settings: TrainingSettings = RIPPLE_QA_SETTINGS,
    seed: int = 0,
    model_card: Callable[[dict[str, Any]], str] | None = None,
    log=print,
) -> Path:
    """Run both SFT stages on `loaded` and save the result to `output` (see the module doc).

    With `evaluation` (a QA file), answers to its questions are scored before and after, and
    those questions are kept out of the training data unless `train_on_evaluation`: the paper's
    stage 2 reinforces the very facts the benchmark asks about (its specificity questions), so
    that setting measures the model the benchmark uses, the default measures generalisation.
    `evaluation_limit` scores only the file's first questions; `model_card(report)` writes the
    folder's README.md.
    """
    evaluated = (read_qa_file(evaluation) if evaluation else [])[:evaluation_limit]
    first, note = stage_one_pairs(stage1, stage1_pairs, seed)
    second = select_pairs(read_qa_file(stage2), stage2_pairs, seed, exclude=() if train_on_evaluation else evaluated)
    report: dict[str, Any] = {
        "base_model": loaded.name,
        "prompt_format": prompt_format,
        "seed": seed,
        "stage1_note": note,
    }
    if evaluated:
        trained = {question_key(pair.question) for pair in second}
        report["evaluation_questions_trained_on"] = sum(question_key(pair.question) in trained for pair in evaluated)
    log(note)
    if evaluated:
        report["before"] = evaluate_qa(loaded, evaluated, prompt_format)
        log(f"before: {_summary(report['before'])}")
    stages = [("stage1", first, stage1_settings, stage1), ("stage2", second, stage2_settings, str(stage2))]
    for name, pairs, settings, source in stages:
        if not pairs:
            continue
        log(f"{name}: {len(pairs)} QA pairs from {source}")
        settings = replace(settings, seed=seed)
        tokens = fine_tune(loaded, pairs, settings, prompt_format)
        report[name] = {"source": source, "pairs": len(pairs), "train_tokens": tokens, "settings": asdict(settings)}
    if evaluated:
        report["evaluation_file"] = str(evaluation)
        report["after"] = evaluate_qa(loaded, evaluated, prompt_format)
        log(f"after:  {_summary(report['after'])}")
    folder = save_model(loaded, output, report, model_card(report) if model_card else "")
    log(f"saved to {folder} (use it as model={folder})")
    return folder


def _summary(scores: dict[str, Any]) -> str:
    return (
        f"exact match {scores['exact_match']:.3f}, mean answer length "
        f"{scores['mean_answer_words']} words over {scores['questions']} questions"
    )
