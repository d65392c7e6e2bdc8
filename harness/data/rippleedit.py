"""RippleEdit (Cohen et al. 2024): read the official files, label queries, split as PropMEND.

The benchmark ships three JSON files, `popular.json`, `random.json` and `recent.json` (MIT
licence, github.com/edenbiran/RippleEdits, data/benchmark/). Each is a list of edits: `edit`
(`prompt` is the fact sentence, plus `subject_id`, `relation`, `target_id` and, for popular and
random, `original_fact`) and six criteria, each a list of tests whose `test_queries` hold a
`prompt` and `answers` (`value` + `aliases` per answer object).

What `prepare` computes, following PropMEND (section 4.1, Appendix D):

- every test query becomes one question labelled by propagation type (efficacy: LG, CI, CII,
  SA; specificity: RS, FN) and as verbatim when a valid answer occurs in the edit sentence;
- queries without a non-blank answer value are dropped (and counted);
- the union of the three files is split with a seeded shuffle: validation and test are drawn
  from the edits that keep at least one efficacy and one specificity query, every other edit
  goes to train (500 / 500 / 3,686 on the official data).

Condition queries and `test_condition` drive the original pre-edit filtering, which PropMEND
does not apply (footnote 1: every method sees the same questions); they are read but unused.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import sys
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

log = logging.getLogger(__name__)

SUBSETS = ("popular", "random", "recent")
OFFICIAL_URL = "https://raw.githubusercontent.com/edenbiran/RippleEdits/main/data/benchmark"
OFFICIAL_PAGE = "https://github.com/edenbiran/RippleEdits/tree/main/data/benchmark"
DATA_DIR_ENV = "RIPPLEBENCH_RIPPLEEDIT_DIR"
SPLITS = ("train", "validation", "test")
FORMAT_VERSION = 1

# Official criterion name -> the paper's abbreviation, in the paper's column order (Table 28).
CRITERIA = {
    "Logical_Generalization": "LG",
    "Compositionality_I": "CI",
    "Compositionality_II": "CII",
    "Subject_Aliasing": "SA",
    "Relation_Specificity": "RS",
    "Forgetfulness": "FN",
}
TYPE_NAMES = {abbreviation: name.replace("_", " ") for name, abbreviation in CRITERIA.items()}
EFFICACY_TYPES = ("LG", "CI", "CII", "SA")
SPECIFICITY_TYPES = ("RS", "FN")

# How the benchmark phrases a fact of each relation ("{}" is the subject); the edit sentence is
# the phrase followed by " <target>.". Used only to cut the (prompt, target, subject) triple that
# MEMIT/MEND-style editors need out of the sentence.
RELATION_PHRASES = {
    "MOTHER": "The name of the mother of {} is",
    "FATHER": "The name of the father of {} is",
    "BROTHER": "The name of the brother of {} is",
    "SISTER": "The name of the sister of {} is",
    "SIBLING": "The names of the siblings of {} are",
    "SPOUSE": "The name of the spouse of {} is",
    "UNCLE": "The name of the uncle of {} is",
    "AUNT": "The name of the aunt of {} is",
    "CHILD": "The name of the child of {} is",
    "NUMBER_OF_CHILDREN": "The number of children {} has is",
    "SEX_OR_GENDER": "The gender of {} is",
    "PLACE_OF_BIRTH": "The place of birth of {} is",
    "PLACE_OF_DEATH": "The place of death of {} is",
    "PLACE_OF_BURIAL": "The place of burial of {} is",
    "COUNTRY": "The name of the country which {} is associated with is",
    "COUNTRY_OF_CITIZENSHIP": "The name of the country of citizenship of {} is",
    "POSITION_HELD": "The name of the position held by {} is",
    "STEPFATHER": "The name of the stepfather of {} is",
    "STEPMOTHER": "The name of the stepmother of {} is",
    "MEMBER_OF_SPORTS_TEAM": "The name of the sports team which {} is a member of is",
    "ALMA_MATER": "The name of the alma mater of {} is",
    "SEXUAL_ORIENTATION": "The sexual orientation of {} is",
    "OCCUPATION": "The occupation of {} is",
    "EMPLOYER": "The name of the employer of {} is",
    "LEAGUE": "The name of the league which {} plays in is",
    "FIELD_OF_WORK": "The name of the field of work of {} is",
    "NATIVE_LANGUAGE": "The mother tongue of {} is",
    "AWARD_RECEIVED": "The name of the award {} won is",
    "FOLLOWS": "{} follows",
    "FOLLOWED_BY": "{} is followed by",
    "ETHNIC_GROUP": "The name of the ethnic group which {} is associated with is",
    "RELIGION": "The name of the religion which {} is associated with is",
    "EYE_COLOR": "The eye color of {} is",
    "DATE_OF_BIRTH": "The date of birth of {} is",
    "DATE_OF_DEATH": "The date of death of {} is",
    "HEAD_OF_GOVERNMENT": "The name of the head of government of {} is",
    "HEAD_OF_STATE": "The name of the head of state of {} is",
    "CONTINENT": "The name of the continent which {} is part of is",
    "CAPITAL": "The name of the capital city of {} is",
    "CURRENCY": "The name of the currency in {} is",
    "OFFICIAL_LANGUAGE": "The official language of {} is",
    "ANTHEM": "The name of the anthem of {} is",
    "LIKELY_ANTHEM": "The name of the anthem that is most likely to be performed in {} is",
    "CAPITAL_OF": "The name of the country which {} is the capital of is",
    "AUTHOR": "The name of the author of {} is",
    "EDITOR": "The name of the editor of {} is",
    "DIRECTOR": "The name of the director of {} is",
    "SCREENWRITER": "The name of the screenwriter of {} is",
    "CAST_MEMBER": "The names of the cast members of {} are",
    "ARCHITECT": "The name of the architect of {} is",
    "COMPOSER": "The name of the composer of {} is",
    "FOUNDER": "The name of the founder of {} is",
}


def _normalise(text: str) -> str:
    """Lower case with runs of whitespace collapsed: the comparison the EM metric uses."""
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class RippleQuery:
    """One propagation question: `type` is LG, CI, CII, SA, RS or FN."""

    prompt: str
    answers: tuple[str, ...]
    type: str
    verbatim: bool

    @property
    def category(self) -> str:
        return "efficacy" if self.type in EFFICACY_TYPES else "specificity"


@dataclass(frozen=True)
class RippleEdit:
    """One edit with its kept questions; `dropped` counts the questions that had no answer."""

    edit_id: str
    subset: str
    fact: str
    relation: str
    atomic_facts: tuple[dict[str, str], ...]
    queries: tuple[RippleQuery, ...]
    dropped: int = 0

    @property
    def eligible_for_evaluation(self) -> bool:
        """PropMEND's val/test filter: at least one efficacy and one specificity question."""
        categories = {query.category for query in self.queries}
        return {"efficacy", "specificity"} <= categories

    def to_record(self) -> dict[str, Any]:
        return {**asdict(self), "queries": [asdict(query) for query in self.queries]}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "RippleEdit":
        queries = tuple(
            RippleQuery(q["prompt"], tuple(q["answers"]), q["type"], bool(q["verbatim"])) for q in record["queries"]
        )
        fields = {key: record[key] for key in ("edit_id", "subset", "fact", "relation", "dropped")}
        return cls(**fields, atomic_facts=tuple(record["atomic_facts"]), queries=queries)


def valid_answers(query: Mapping[str, Any]) -> tuple[str, ...]:
    """The strings that count as a correct answer to an official test query.

    As PropMEND: an answer object counts only if its `value` is not blank, and then its value
    and aliases are all valid. As the official RippleEdits code: blank strings and
    one-character non-numeric strings are discarded (a one-letter alias such as "M" would
    otherwise match almost any text under case-insensitive substring matching).
    """
    answers: list[str] = []
    for answer in query.get("answers") or ():
        value = "" if answer.get("value") is None else str(answer["value"])
        if not value.strip():
            continue
        for text in (value, *(str(alias) for alias in answer.get("aliases") or ())):
            text = text.strip()
            if (len(text) > 1 or text.isdigit()) and text not in answers:
                answers.append(text)
    return tuple(answers)


def is_verbatim(fact: str, answers: Iterable[str]) -> bool:
    """True when any answer occurs in the fact sentence, ignoring case and whitespace runs."""
    haystack = _normalise(fact)
    return any(_normalise(answer) in haystack for answer in answers)


def atomic_fact(fact: str, relation: str) -> dict[str, str] | None:
    """The (prompt, target, subject) triple of an edit sentence, or None if it cannot be cut."""
    phrase = RELATION_PHRASES.get(relation)
    if phrase is None:
        return None
    prefix, suffix = (re.escape(part) for part in phrase.split("{}"))
    match = re.fullmatch(rf"({prefix}(?P<subject>.+?){suffix}) (?P<target>.+?)\.?", fact.strip())
    if match is None:
        return None
    return {"prompt": match.group(1), "target": match.group("target"), "subject": match.group("subject")}


def parse_entry(entry: Any, edit_id: str, subset: str, where: str) -> RippleEdit:
    """One official entry as a RippleEdit; `where` names the entry in errors."""
    if not isinstance(entry, dict) or not isinstance(entry.get("edit"), dict):
        raise ValueError(f"{where}: not a RippleEdits entry (no 'edit' object).")
    fact = str(entry["edit"].get("prompt") or "").strip()
    if not fact:
        raise ValueError(f"{where}: the edit has no 'prompt' (the fact sentence).")
    missing = [name for name in CRITERIA if not isinstance(entry.get(name), list)]
    if missing:
        raise ValueError(
            f"{where}: missing criteria {', '.join(missing)}; an entry needs all of {', '.join(CRITERIA)}."
        )
    queries: list[RippleQuery] = []
    dropped = 0
    for criterion, query_type in CRITERIA.items():
        for test in entry[criterion]:
            if not isinstance(test, dict):
                raise ValueError(f"{where}: {criterion} holds a {type(test).__name__}, not a test object.")
            for query in test.get("test_queries") or ():
                answers = valid_answers(query)
                if not answers or not str(query.get("prompt") or "").strip():
                    dropped += 1
                    continue
                queries.append(RippleQuery(query["prompt"].strip(), answers, query_type, is_verbatim(fact, answers)))
    relation = str(entry["edit"].get("relation") or "")
    triple = atomic_fact(fact, relation)
    return RippleEdit(edit_id, subset, fact, relation, (triple,) if triple else (), tuple(queries), dropped)


def read_subset(path: str | Path, subset: str) -> list[RippleEdit]:
    """Read one official file; edit ids are `<subset>-<position in the file>`."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}).") from None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of edits, found {type(entries).__name__}.")
    return [parse_entry(entry, f"{subset}-{i}", subset, f"{path}, entry {i}") for i, entry in enumerate(entries)]


def split_edits(
    edits: Sequence[RippleEdit], validation_size: int = 500, test_size: int = 500, seed: int = 0
) -> dict[str, list[RippleEdit]]:
    """PropMEND's splits: seeded validation and test draws from the eligible edits, the rest train.

    Eligible edits (at least one efficacy and one specificity question) are shuffled with
    `random.Random(seed)`; the first `validation_size` form validation, the next `test_size`
    test. Train keeps every other edit in file order, ineligible ones included.
    """
    eligible = [edit for edit in edits if edit.eligible_for_evaluation]
    if validation_size < 0 or test_size < 0 or validation_size + test_size > len(eligible):
        raise ValueError(
            f"Cannot draw {validation_size} validation + {test_size} test edits: {len(eligible)} of "
            f"{len(edits)} edits have both an efficacy and a specificity question."
        )
    order = list(eligible)
    random.Random(seed).shuffle(order)
    validation = order[:validation_size]
    test = order[validation_size : validation_size + test_size]
    held_out = {edit.edit_id for edit in validation + test}
    train = [edit for edit in edits if edit.edit_id not in held_out]
    return {"train": train, "validation": validation, "test": test}


def _download(url: str, target: Path) -> None:
    """Fetch one file with a progress bar; refuse a Git LFS pointer in place of the data."""
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:
        size = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=size, unit="B", unit_scale=True, desc=target.name) as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
    if target.read_bytes()[:64].startswith(b"version https://git-lfs"):
        raise ValueError(f"{url} returned a Git LFS pointer, not the data.")


def _offline_help(folder: str) -> str:
    names = ", ".join(f"{subset}.json" for subset in SUBSETS)
    return (
        f"Download {names} from {OFFICIAL_PAGE} on a machine with internet, place them in one "
        f"folder (e.g. {folder}) and run `ripplebench data rippleedit --source {folder}`."
    )


def fetch_sources(source: str, scratch: Path) -> dict[str, Path]:
    """The three official files from a local folder, or downloaded from a base URL into `scratch`."""
    if "://" not in source:
        folder = Path(source).expanduser()
        missing = [f"{subset}.json" for subset in SUBSETS if not (folder / f"{subset}.json").is_file()]
        if missing:
            raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}. {_offline_help(str(folder))}")
        return {subset: folder / f"{subset}.json" for subset in SUBSETS}
    paths = {}
    for subset in SUBSETS:
        url = f"{source.rstrip('/')}/{subset}.json"
        paths[subset] = scratch / f"{subset}.json"
        try:
            log.info("Downloading %s", url)
            _download(url, paths[subset])
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise ConnectionError(
                f"Could not download {url} ({error}). {_offline_help('~/rippleedits')}"
            ) from None
    return paths


def default_data_dir() -> Path:
    """Where prepared data lives: $RIPPLEBENCH_RIPPLEEDIT_DIR, else <ripplebench cache>/rippleedit."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    from ripplebench.core.models import default_cache_dir

    return default_cache_dir() / "rippleedit"


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """An explicit folder, else the default one."""
    return Path(data_dir).expanduser() if data_dir else default_data_dir()


def _write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Write atomically, so an interrupted run never leaves a half-written split."""
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(handle.name, path)


def prepare(
    source: str,
    data_dir: str | Path | None = None,
    validation_size: int = 500,
    test_size: int = 500,
    seed: int = 0,
) -> dict[str, Any]:
    """Read the official files, split them, and write train/validation/test JSON lines.

    Returns the manifest that is also written next to the splits (`manifest.json`).
    """
    out = resolve_data_dir(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        edits = [edit for subset, path in fetch_sources(source, Path(scratch)).items() for edit in read_subset(path, subset)]
    dropped = sum(edit.dropped for edit in edits)
    log.info("RippleEdit: dropped %d queries that have no non-blank answer.", dropped)
    splits = split_edits(edits, validation_size, test_size, seed)
    for split, members in splits.items():
        _write_jsonl(out / f"{split}.jsonl", (edit.to_record() for edit in members))
    manifest = {
        "format_version": FORMAT_VERSION,
        "source": source,
        "seed": seed,
        "edits": {subset: sum(edit.subset == subset for edit in edits) for subset in SUBSETS},
        "split_sizes": {split: len(items) for split, items in splits.items()},
        "dropped_queries": dropped,
        "edits_without_atomic_fact": sum(not edit.atomic_facts for edit in edits),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def missing_data_message(folder: Path, split: str) -> str:
    return (
        f"No prepared RippleEdit data: {folder / f'{split}.jsonl'} does not exist. Prepare it with "
        f"`ripplebench data rippleedit --data-dir {folder}` (downloads the official files) or, offline, "
        f"`ripplebench data rippleedit --source DIR --data-dir {folder}` with DIR holding popular.json, "
        f"random.json and recent.json from {OFFICIAL_PAGE}. To use data prepared elsewhere, set "
        f"{DATA_DIR_ENV}=FOLDER or pass lm_eval --metadata '{{\"data_dir\": \"FOLDER\"}}'."
    )


def load_split(split: str, data_dir: str | Path | None = None) -> list[RippleEdit]:
    """The prepared edits of one split."""
    if split not in SPLITS:
        raise ValueError(f"Unknown RippleEdit split '{split}'. Valid: {', '.join(SPLITS)}.")
    folder = resolve_data_dir(data_dir)
    path = folder / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(missing_data_message(folder, split))
    with path.open(encoding="utf-8") as handle:
        return [RippleEdit.from_record(json.loads(line)) for line in handle if line.strip()]


def query_statistics(edits: Sequence[RippleEdit]) -> dict[str, Any]:
    """Tables 5 and 6 of the paper for a list of edits: questions and verbatim rate per type."""
    counts = Counter(query.type for edit in edits for query in edit.queries)
    verbatim = Counter(query.type for edit in edits for query in edit.queries if query.verbatim)
    per_type = {
        query_type: {"questions": counts[query_type], "verbatim": verbatim[query_type]}
        for query_type in CRITERIA.values()
    }
    return {
        "edits": len(edits),
        "types": per_type,
        "questions": sum(counts.values()),
        "verbatim": sum(verbatim.values()),
    }


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def format_statistics(stats: Mapping[str, Mapping[str, Any]]) -> str:
    """A text table with one column per split (Table 6 counts, then Table 5 verbatim rates)."""
    splits = list(stats)
    rows: list[tuple[str, list[str]]] = [("# edits", [str(stats[s]["edits"]) for s in splits])]
    for query_type, name in TYPE_NAMES.items():
        rows.append((f"# {name} ({query_type}) questions", [str(stats[s]["types"][query_type]["questions"]) for s in splits]))
    rows.append(("# questions, overall", [str(stats[s]["questions"]) for s in splits]))
    for query_type, name in TYPE_NAMES.items():
        cells = [_percent(stats[s]["types"][query_type]["verbatim"], stats[s]["types"][query_type]["questions"]) for s in splits]
        rows.append((f"% verbatim, {name} ({query_type})", cells))
    rows.append(("% verbatim, overall", [_percent(stats[s]["verbatim"], stats[s]["questions"]) for s in splits]))
    label_width = max(len(label) for label, _ in rows)
    widths = [max(len(split), *(len(cells[i]) for _, cells in rows)) for i, split in enumerate(splits)]
    lines = [" " * label_width + "  " + "  ".join(s.rjust(w) for s, w in zip(splits, widths))]
    lines += [label.ljust(label_width) + "  " + "  ".join(c.rjust(w) for c, w in zip(cells, widths)) for label, cells in rows]
    return "\n".join(lines)


def prepared_statistics(data_dir: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Statistics of every prepared split."""
    return {split: query_statistics(load_split(split, data_dir)) for split in SPLITS}


def _run_prepare(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    manifest = prepare(args.source, args.data_dir, args.validation_size, args.test_size, args.seed)
    folder = resolve_data_dir(args.data_dir)
    sizes = ", ".join(f"{split} {size}" for split, size in manifest["split_sizes"].items())
    print(f"Prepared RippleEdit in {folder}: {sizes} edits.")


def _run_stats(args: argparse.Namespace) -> None:
    folder = resolve_data_dir(args.data_dir)
    table = format_statistics(prepared_statistics(folder))
    print(f"RippleEdit questions per propagation type ({folder})")
    print(table)
    manifest = folder / "manifest.json"
    if manifest.is_file():
        dropped = json.loads(manifest.read_text(encoding="utf-8"))["dropped_queries"]
        print(f"Queries dropped while preparing (no non-blank answer): {dropped}")


def _without_traceback(command: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], int]:
    """Run a command; report a bad input or missing data as one line on stderr (exit status 1)."""

    def run(args: argparse.Namespace) -> int:
        try:
            command(args)
        except (OSError, ValueError) as error:
            print(f"ripplebench data rippleedit: {error}", file=sys.stderr)
            return 1
        return 0

    return run


def add_cli(datasets: argparse._SubParsersAction) -> None:
    """Add `ripplebench data rippleedit [stats]` to the `data` command's sub-parsers."""
    parser = datasets.add_parser(
        "rippleedit",
        help="prepare RippleEdit (official files -> paper splits) or print its statistics",
        description="Prepare RippleEdit: read popular.json, random.json and recent.json, label every "
        "query, and write the paper's train/validation/test splits.",
    )
    parser.add_argument(
        "--source",
        default=OFFICIAL_URL,
        help="a folder holding the three official files, or a base URL to download them from "
        "(default: the RippleEdits repository)",
    )
    data_dir_help = f"where prepared data goes (default: ${DATA_DIR_ENV}, else the ripplebench cache)"
    parser.add_argument("--data-dir", help=data_dir_help)
    parser.add_argument("--validation-size", type=int, default=500, help="validation edits (paper: 500)")
    parser.add_argument("--test-size", type=int, default=500, help="test edits (paper: 500)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split shuffle")
    parser.set_defaults(run=_without_traceback(_run_prepare))
    actions = parser.add_subparsers(dest="action")
    stats = actions.add_parser("stats", help="print questions per propagation type and verbatim rates")
    # SUPPRESS keeps a --data-dir given before `stats` from being reset to None by this parser.
    stats.add_argument("--data-dir", default=argparse.SUPPRESS, help=data_dir_help)
    stats.set_defaults(run=_without_traceback(_run_stats))
