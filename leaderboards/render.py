"""Write a leaderboard as Markdown, CSV, JSON and one self-contained HTML page (plots inlined)."""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
import itertools
from pathlib import Path
from typing import Any

from ripplebench.core.io import write_atomically, write_json
from ripplebench.leaderboards.leaderboard import Cell, Column, Leaderboard, Row, Table

MARKER = "†"
CSV_FIELDS = [
    "model",
    "table",
    "task",
    "metric",
    "column",
    "editor",
    "oracle",
    "mean",
    "stderr",
    "n",
    "rank",
    "diff_vs_baseline",
    "p_vs_baseline",
]


def value_text(value: float, unit: str) -> str:
    """A number as shown: scores in points (x100, one decimal), shares in percent."""
    if unit == "score":
        return f"{100 * value:.1f}"
    if unit == "share":
        return f"{100 * value:.0f}%"
    if unit == "seconds":
        return f"{value:.2f}"
    if unit == "ratio":
        return f"{value:.3g}×"
    return f"{value:,.0f}"


def cell_text(cell: Cell, column: Column) -> str:
    """`mean ± stderr` (the mean alone where there is no standard error)."""
    mean = value_text(cell.mean, column.unit)
    return mean if cell.stderr is None else f"{mean} ± {value_text(cell.stderr, column.unit)}"


def shows_n(column: Column) -> bool:
    return column.unit in ("score", "share")


def hover(cell: Cell, baseline: str) -> str:
    """The baseline comparison of a cell, for its HTML title."""
    if cell.p is None:
        return ""
    return f"vs {baseline}: {100 * cell.diff:+.1f} points, p = {cell.p:.4f} (paired bootstrap)"


def editor_label(row: Row) -> str:
    return f"{row.editor} (oracle)" if row.oracle else row.editor


def legend(board: Leaderboard) -> str:
    return (
        f"Cells: mean ± standard error (n samples); scores in points (x100). Bold: best, underlined: "
        f"second per column. {MARKER}: differs from {board.baseline} by a paired bootstrap, p < {board.alpha:g} "
        f"({board.resamples} resamples, seed {board.seed}). (oracle): the editor uses knowledge of the test "
        "data (the paper's gray cells). prior share: of the correct efficacy answers, those that are the "
        "relation's majority answer in the training split, or among the run's questions for a relation the "
        "training split lacks (a score a fixed answer per relation explains)."
    )


def _markdown_cell(cell: Cell | None, column: Column, alpha: float) -> str:
    if cell is None:
        return ""
    text = cell_text(cell, column)
    text = {1: f"**{text}**", 2: f"<u>{text}</u>"}.get(cell.rank, text)
    if shows_n(column):
        text += f" (n={cell.n})"
    return text + (MARKER if cell.significant(alpha) else "")


def markdown_table(table: Table, alpha: float) -> str:
    labels = (f"{c.group} · {c.label}" if c.group and c.group != c.label else c.label for c in table.columns)
    header = ["editor", *labels]
    lines = [
        f"### {table.title} — {table.model}",
        "",
        f"{table.caption}; tasks: {', '.join(table.tasks)}",
        "",
        "| " + " | ".join(header) + " |",
        "|---|" + "--:|" * len(table.columns),
    ]
    for row in table.rows:
        cells = [_markdown_cell(cell, column, alpha) for cell, column in zip(row.cells, table.columns)]
        lines.append("| " + " | ".join([editor_label(row), *cells]) + " |")
    return "\n".join(lines)


def markdown(board: Leaderboard) -> str:
    parts = ["# Leaderboard", "", legend(board)]
    parts += ["\n" + markdown_table(table, board.alpha) for table in board.tables]
    return "\n".join(parts) + "\n"


def csv_text(board: Leaderboard) -> str:
    """One line per cell, numbers unrounded (scores 0-1)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for table in board.tables:
        for row in table.rows:
            for cell, column in zip(row.cells, table.columns):
                if cell is None:
                    continue
                writer.writerow(
                    {
                        "model": table.model,
                        "table": table.title,
                        "task": column.task,
                        "metric": column.metric,
                        "column": f"{column.group} · {column.label}",
                        "editor": row.editor,
                        "oracle": row.oracle,
                        "mean": cell.mean,
                        "stderr": cell.stderr,
                        "n": cell.n,
                        "rank": cell.rank,
                        "diff_vs_baseline": cell.diff,
                        "p_vs_baseline": cell.p,
                    }
                )
    return out.getvalue()


def column_groups(columns: list[Column]) -> list[tuple[str, int]]:
    """Header groups of consecutive columns and how many columns each spans."""
    return [(group, len(list(run))) for group, run in itertools.groupby(columns, key=lambda c: c.group)]


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def html(board: Leaderboard, images: list[tuple[str, bytes]]) -> str:
    """The page: every table, then every plot inlined as a data URI; no external resource."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    environment = Environment(
        loader=PackageLoader("ripplebench.leaderboards", "templates"), autoescape=select_autoescape(["html"])
    )
    return environment.get_template("index.html").render(
        board=board,
        images=[(name, data_uri(png)) for name, png in images],
        legend=legend(board),
        cell_text=cell_text,
        column_groups=column_groups,
        shows_n=shows_n,
        hover=hover,
        editor_label=editor_label,
        marker=MARKER,
    )


def write_outputs(board: Leaderboard, out: Path, images: list[tuple[str, bytes]]) -> list[Path]:
    """leaderboard.md/.csv/.json, the PNGs under plots/ (replacing older ones), and index.html in `out`;
    the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, png in images:
        path = out / "plots" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        written.append(path)
    for stale in set((out / "plots").rglob("*.png")) - set(written):  # plots of runs no longer given
        stale.unlink()
    for name, text in (
        ("leaderboard.md", markdown(board)),
        ("leaderboard.csv", csv_text(board)),
        ("index.html", html(board, images)),
    ):
        write_atomically(out / name, [text])
        written.append(out / name)
    data: dict[str, Any] = dataclasses.asdict(board)
    write_json(out / "leaderboard.json", data)
    return [*written, out / "leaderboard.json"]
