"""Meta-training a hypernetwork editor (`ripplebench train-editor`): the harness gives the
trainer (editors/mend/train.py) what it may not import itself, the committed Controlled
RippleEdit splits as default data and greedy-generation scoring through the edit-then-query
engine."""

from __future__ import annotations

from typing import Any, Mapping

from ripplebench.core.models import LoadedModel
from ripplebench.editors.base import Editor
from ripplebench.editors.mend.config import TrainConfig, load_train_config
from ripplebench.editors.mend.data import Instance
from ripplebench.editors.mend.train import MetaTrainer
from ripplebench.harness.engine import EditThenQuery, Query
from ripplebench.harness.metrics import exact_match

GENERATION_STOPS = ("\n",)
GENERATION_TOKENS = 20  # as in evaluation


def generation_scores(
    loaded: LoadedModel, prompt_format: str, editor: Editor, groups: list[list[Instance]]
) -> dict[str, float]:
    """Exact match after editing each group together: `val_efficacy` over the groups' propagation
    questions, `val_specificity` over their specificity questions."""
    queries, scoring = [], []
    for group in groups:
        edits = tuple(instance.edit for instance in group)
        for instance in group:
            for kind, qas in (("val_efficacy", instance.propagation), ("val_specificity", instance.specificity)):
                for qa in qas:
                    queries.append(Query(edits, qa.question, stops=GENERATION_STOPS, max_new_tokens=GENERATION_TOKENS))
                    scoring.append((kind, qa))
    answers = EditThenQuery(loaded, editor, prompt_format).run(queries, progress=False)
    scores: dict[str, list[float]] = {"val_efficacy": [], "val_specificity": []}
    for (kind, qa), answer in zip(scoring, answers):
        scores[kind].append(exact_match(qa.question, answer, [qa.answer, *qa.aliases]))
    return {kind: sum(values) / max(len(values), 1) for kind, values in scores.items()}


def training_config(spec: str, overrides: Mapping[str, Any]) -> TrainConfig:
    """A training config from a YAML file or bundled preset name, with `--set` overrides."""
    return load_train_config(spec, overrides)


def meta_trainer(config: TrainConfig) -> MetaTrainer:
    """The trainer of `config`; data files it leaves empty are the committed training and
    validation splits of Controlled RippleEdit."""
    from ripplebench.core.paths import CONTROLLED_RIPPLE_DATA_DIR
    from ripplebench.harness.data.controlled_ripple.splits import split_path

    defaults = {split: split_path(CONTROLLED_RIPPLE_DATA_DIR, split) for split in ("train", "validation")}
    return MetaTrainer(config, generation_scores, defaults)
