"""Read Controlled RippleEdit instances: ripplebench's generated splits or the official release.

`load_instances(source, split)` accepts
- nothing: ripplebench's committed splits (tasks/controlled_ripple/data/<split>.jsonl);
- a JSON-lines file (or a gzipped one, .jsonl.gz);
- a folder of JSON-lines files, named as ripplebench writes them (test_id.jsonl, ...) or as the
  official release does (test_data_id.jsonl, test_data_ood-entity.jsonl, ...);
- a `datasets` dataset saved with `save_to_disk`;
- the official hub name, loaded with `datasets.load_dataset` (from the user's cache when the hub
  cannot be reached).
Every instance comes back in the official field names (`text`, `questions` with
`alias_question`, `unalias_question`, `answer`) plus ripplebench's extras where present
(`id`, `subject`, `subject_type`, `entity_type`, `entity_ids`, `atomic_facts`, per-question
`answer_aliases`, `entity_id`, `relation_id`). The official release's MEMIT facts
(`facts`: [{prefix, target}]) become `atomic_facts`. A malformed row raises a ValueError naming
the file, line and field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from ripplebench.core.io import iter_jsonl
from ripplebench.core.paths import CONTROLLED_RIPPLE_DATA_DIR
from ripplebench.harness.data.controlled_ripple.splits import SPLIT_NAMES, SPLITS

OFFICIAL_NAME = "leo-liuzy/Controlled-RippleEdit"
QUESTION_FIELDS = ("alias_question", "unalias_question", "answer")


def _text(value: Any) -> str:
    """A field as text: official answers may be numbers (years)."""
    return str(value).strip() if isinstance(value, (str, int, float)) and not isinstance(value, bool) else ""


def normalize_instance(row: Any, where: str) -> dict[str, Any]:
    """Check one row and return it in the official field names plus ripplebench's extras."""
    if not isinstance(row, dict) or not _text(row.get("text")):
        raise ValueError(f"{where}: instance has no fact (field 'text' is missing or empty).")
    questions = row.get("questions")
    if not isinstance(questions, list) or not questions:
        raise ValueError(f"{where}: instance has no questions (field 'questions' is missing or empty).")
    instance = dict(row)
    instance["questions"] = []
    for number, question in enumerate(questions):
        if not isinstance(question, dict):
            raise ValueError(f"{where}: question {number} is not an object (field 'questions[{number}]').")
        missing = [key for key in QUESTION_FIELDS if not _text(question.get(key))]
        if missing:
            fields = ", ".join(f"'questions[{number}].{key}'" for key in missing)
            raise ValueError(f"{where}: question {number} lacks {', '.join(missing)} (field {fields}).")
        aliases = question.get("answer_aliases", [])
        if not isinstance(aliases, list) or not all(_text(alias) for alias in aliases):
            raise ValueError(f"{where}: field 'questions[{number}].answer_aliases' must be a list of answers.")
        instance["questions"].append(
            {**question, "answer": _text(question["answer"]), "answer_aliases": [_text(a) for a in aliases]}
        )
    if "atomic_facts" not in instance and isinstance(row.get("facts"), list):
        instance["atomic_facts"] = [
            {
                "prompt": _text(fact.get("prefix")),
                "target": _text(fact.get("target")),
                "subject": _text(row.get("subject")),
            }
            for fact in row["facts"]
        ]
    for number, fact in enumerate(instance.get("atomic_facts") or []):
        missing = [key for key in ("prompt", "target", "subject") if not _text((fact or {}).get(key))]
        if missing:
            raise ValueError(f"{where}: field 'atomic_facts[{number}].{missing[0]}' is missing or empty.")
    return instance


def read_instances(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file (optionally .gz) of instances, naming the file and line of any bad row."""
    return [normalize_instance(row, where) for where, row in iter_jsonl(path)]


def identified_instances(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """(edit id, instance) pairs of a JSON-lines file; an instance without `id` is named by the
    file's stem and its position in the file (1-based)."""
    path = Path(path)
    return [
        (str(instance.get("id") or f"{path.stem}-{number}"), instance)
        for number, instance in enumerate(read_instances(path), start=1)
    ]


def _from_rows(rows: Iterable[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    return [normalize_instance(row, f"{where} row {number}") for number, row in enumerate(rows)]


def _pick_split(dataset: Any, split: str, where: str) -> Any:
    """One split of a `datasets.DatasetDict` (by our name or the official file stem), or the dataset."""
    if not hasattr(dataset, "keys"):
        return dataset
    candidates = [split, Path(SPLITS[split].official_file).stem]
    for candidate in candidates:
        if candidate in dataset:
            return dataset[candidate]
    raise ValueError(f"{where} has no split '{split}'. Its splits: {', '.join(dataset.keys())}.")


def _split_file(folder: Path, split: str) -> Path:
    candidates = [folder / f"{split}.jsonl", folder / f"{split}.jsonl.gz", folder / SPLITS[split].official_file]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    names = ", ".join(candidate.name for candidate in candidates)
    hint = (
        " Generate it with `ripplebench data controlled-ripple generate`."
        if folder == CONTROLLED_RIPPLE_DATA_DIR
        else ""
    )
    raise FileNotFoundError(f"No '{split}' split in {folder} (looked for {names}).{hint}")


def load_instances(source: str | Path | None = None, split: str = "test_id") -> list[dict[str, Any]]:
    """Instances of one split from any supported source (see the module docstring)."""
    if split not in SPLIT_NAMES:
        raise ValueError(f"Unknown Controlled RippleEdit split '{split}'. Valid: {', '.join(SPLIT_NAMES)}.")
    path = Path(source) if source is not None else CONTROLLED_RIPPLE_DATA_DIR
    if path.is_file():
        return read_instances(path)
    if path.is_dir():
        if (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file():
            import datasets

            return _from_rows(_pick_split(datasets.load_from_disk(str(path)), split, str(path)), str(path))
        return read_instances(_split_file(path, split))
    if str(source) != OFFICIAL_NAME:
        raise FileNotFoundError(
            f"'{source}' is neither a file, a folder, nor the official dataset name '{OFFICIAL_NAME}'."
        )
    import datasets

    try:
        dataset = datasets.load_dataset(OFFICIAL_NAME)
    except Exception as error:  # the hub unreachable and nothing cached: say what to do instead
        raise RuntimeError(
            f"Could not load '{OFFICIAL_NAME}' from the hub or the local cache ({error}). "
            "Pass a local copy instead: a folder of JSON-lines files or a saved `datasets` dataset."
        ) from error
    return _from_rows(_pick_split(dataset, split, OFFICIAL_NAME), OFFICIAL_NAME)
