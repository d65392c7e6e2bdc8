"""Text corpora for the key statistics (MEMIT's C0 = E[k k^T]).

The paper reports MEMIT with statistics from wikitext-103 and from the benchmark's own training
split (facts plus question-answer pairs). Offline, `auto` uses the Controlled RippleEdit
training split when it is installed, else its committed sample files (a handful of instances:
enough to run, too few for good statistics). `wikitext-103` needs `datasets` and network or a
local Hugging Face cache; any local text file (one document per line) or Controlled RippleEdit
style .jsonl file also works.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from ripplebench.core.io import read_jsonl
from ripplebench.core.paths import CONTROLLED_RIPPLE_DATA_DIR as DATA_DIR

CORPORA = ("auto", "ctrl_ripple_train", "ctrl_ripple_sample", "wikitext-103", "<path to .txt or .jsonl>")
CTRL_RIPPLE_TRAIN = DATA_DIR / "train.jsonl.gz"
SHUFFLE_SEED = 1


@dataclass(frozen=True)
class Corpus:
    """Documents for the statistics; `id` names them in cache keys and results."""

    id: str
    description: str
    texts: tuple[str, ...]

    def sample(self, count: int) -> tuple[str, ...]:
        """A fixed pseudo-random subset of `count` documents (all of them if there are fewer)."""
        if count >= len(self.texts):
            return self.texts
        chosen = random.Random(SHUFFLE_SEED).sample(range(len(self.texts)), count)
        return tuple(self.texts[index] for index in sorted(chosen))


def _digest(texts: tuple[str, ...]) -> str:
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]


def instance_texts(path: Path) -> list[str]:
    """A Controlled RippleEdit file's facts and question-answer pairs, as the paper's corpus."""
    texts = []
    for instance in read_jsonl(path):
        texts.append(instance["text"])
        for question in instance.get("questions", []):
            for key in ("alias_question", "unalias_question"):
                if question.get(key):
                    texts.append(f"{question[key]} {question['answer']}")
    return texts


def _from_texts(name: str, description: str, texts: list[str]) -> Corpus:
    kept = tuple(text.strip() for text in texts if text.strip())
    if not kept:
        raise ValueError(f"Corpus '{name}' holds no text.")
    return Corpus(f"{name}-{_digest(kept)}", description, kept)


def _wikitext() -> Corpus:
    try:
        import datasets

        rows = datasets.load_dataset("wikitext", "wikitext-103-raw-v1", split="train")
    except Exception as error:  # offline, no cache, or no `datasets`: say what to use instead
        raise ValueError(
            f"mom2_dataset 'wikitext-103' is not available here ({type(error).__name__}: {error}). "
            f"Use one of {', '.join(CORPORA)}."
        ) from None
    texts = tuple(text.strip() for text in rows["text"] if len(text.strip()) > 20)
    return Corpus("wikitext-103-raw-v1", "wikitext-103 (train)", texts)


def resolve_auto(spec: str) -> str:
    """`auto` becomes the corpus it stands for here; other settings are returned as they are."""
    if spec != "auto":
        return spec
    return "ctrl_ripple_train" if CTRL_RIPPLE_TRAIN.is_file() else "ctrl_ripple_sample"


def load_corpus(spec: str) -> Corpus:
    """Resolve a corpus setting (see CORPORA) to its documents."""
    spec = resolve_auto(spec)
    if spec == "ctrl_ripple_train":
        if not CTRL_RIPPLE_TRAIN.is_file():
            raise ValueError(f"The Controlled RippleEdit training split {CTRL_RIPPLE_TRAIN} is not installed.")
        return _from_texts(spec, "Controlled RippleEdit training split", instance_texts(CTRL_RIPPLE_TRAIN))
    if spec == "ctrl_ripple_sample":
        texts = [text for path in sorted(DATA_DIR.glob("sample_*.jsonl")) for text in instance_texts(path)]
        return _from_texts(spec, "Controlled RippleEdit committed sample files", texts)
    if spec == "wikitext-103":
        return _wikitext()
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ValueError(f"Unknown mom2_dataset '{spec}': not a file. Valid: {', '.join(CORPORA)}.")
    if path.suffix == ".jsonl":
        return _from_texts(path.stem, f"Controlled RippleEdit-style file {path}", instance_texts(path))
    return _from_texts(path.stem, f"text file {path}", path.read_text(encoding="utf-8").splitlines())
