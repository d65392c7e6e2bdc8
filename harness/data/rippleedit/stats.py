"""RippleEdit's statistics: questions and verbatim rate per propagation type (paper Tables 5 and 6)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

from ripplebench.harness.data.rippleedit.read import load_split
from ripplebench.harness.data.rippleedit.records import CRITERIA, TYPE_NAMES, RippleEdit
from ripplebench.harness.data.rippleedit.splits import SPLITS


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
        rows.append(
            (f"# {name} ({query_type}) questions", [str(stats[s]["types"][query_type]["questions"]) for s in splits])
        )
    rows.append(("# questions, overall", [str(stats[s]["questions"]) for s in splits]))
    for query_type, name in TYPE_NAMES.items():
        cells = [
            _percent(stats[s]["types"][query_type]["verbatim"], stats[s]["types"][query_type]["questions"])
            for s in splits
        ]
        rows.append((f"% verbatim, {name} ({query_type})", cells))
    rows.append(("% verbatim, overall", [_percent(stats[s]["verbatim"], stats[s]["questions"]) for s in splits]))
    label_width = max(len(label) for label, _ in rows)
    widths = [max(len(split), *(len(cells[i]) for _, cells in rows)) for i, split in enumerate(splits)]
    lines = [" " * label_width + "  " + "  ".join(s.rjust(w) for s, w in zip(splits, widths))]
    lines += [
        label.ljust(label_width) + "  " + "  ".join(c.rjust(w) for c, w in zip(cells, widths)) for label, cells in rows
    ]
    return "\n".join(lines)


def prepared_statistics(data_dir: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Statistics of every prepared split."""
    return {split: query_statistics(load_split(split, data_dir)) for split in SPLITS}
