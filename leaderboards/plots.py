"""The leaderboard's plots as PNG bytes (matplotlib, Agg): per model and task, efficacy against
specificity, both as bars with standard errors, and efficacy per relation or propagation type."""

from __future__ import annotations

import io
import re
from typing import Any, Iterable

from ripplebench.leaderboards.leaderboard import Leaderboard

ORACLE_COLOR = "#999999"


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=100)


def _png(figure) -> bytes:
    import matplotlib.pyplot as plt

    out = io.BytesIO()
    figure.tight_layout()
    figure.savefig(out, format="png", metadata={"Software": None})
    plt.close(figure)
    return out.getvalue()


def _title(axes, what: str, model: str) -> None:
    axes.set_title(f"{what}\n{model}", fontsize=9)


def slug(text: str) -> str:
    """A file-name-safe form of a model or task name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


def _by(rows: Iterable[dict[str, Any]], *keys: str) -> dict[tuple, list[dict[str, Any]]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[key] for key in keys), []).append(row)
    return groups


def scatter(model: str, task: str, rows: list[dict[str, Any]], prefix: str) -> bytes:
    """Efficacy against specificity, one point per editor, with standard-error bars."""
    figure, axes = _figure(6, 4.5)
    cells = {(r["editor"], r["metric"]): r for r in rows}
    for editor, oracle in dict.fromkeys((r["editor"], r["oracle"]) for r in rows):
        effi, spec = cells.get((editor, prefix + "efficacy")), cells.get((editor, prefix + "specificity"))
        if effi is None or spec is None:
            continue
        axes.errorbar(
            100 * spec["mean"],
            100 * effi["mean"],
            xerr=100 * (spec["stderr"] or 0),
            yerr=100 * (effi["stderr"] or 0),
            fmt="o",
            capsize=3,
            color=ORACLE_COLOR if oracle else None,
        )
        axes.annotate(
            editor + (" (oracle)" if oracle else ""),
            (100 * spec["mean"], 100 * effi["mean"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    scorer = "LLM-Score" if prefix else "EM"
    axes.set(xlabel=f"specificity ({scorer}, points)", ylabel=f"efficacy ({scorer}, points)")
    axes.margins(0.15)
    _title(axes, task, model)
    return _png(figure)


def bars(model: str, task: str, rows: list[dict[str, Any]], prefix: str) -> bytes:
    """Efficacy and specificity per editor, bars with standard errors."""
    editors = list(dict.fromkeys(r["editor"] for r in rows))
    figure, axes = _figure(max(5, 0.9 * len(editors) + 2), 4)
    cells = {(r["editor"], r["metric"]): r for r in rows}
    width = 0.4
    for offset, kind in ((-width / 2, "efficacy"), (width / 2, "specificity")):
        found = [(i, cells[e, prefix + kind]) for i, e in enumerate(editors) if (e, prefix + kind) in cells]
        axes.bar(
            [i + offset for i, _ in found],
            [100 * c["mean"] for _, c in found],
            width,
            yerr=[100 * (c["stderr"] or 0) for _, c in found],
            capsize=3,
            label=kind,
        )
    axes.set_xticks(range(len(editors)), editors, rotation=30, ha="right")
    axes.set(ylabel=f"score ({'LLM-Score' if prefix else 'EM'}, points)", ylim=(0, 100))
    _title(axes, task, model)
    axes.legend()
    return _png(figure)


def heatmap(model: str, task: str, rows: list[dict[str, Any]]) -> bytes:
    """Efficacy (EM) per stratum (relation or propagation type) and editor."""
    editors = list(dict.fromkeys(r["editor"] for r in rows))
    strata = sorted({r["stratum"] for r in rows})
    values = {(r["stratum"], r["editor"]): r for r in rows}
    grid = [[100 * values[s, e]["mean"] if (s, e) in values else float("nan") for e in editors] for s in strata]
    figure, axes = _figure(max(5, 0.9 * len(editors) + 3), max(3, 0.3 * len(strata) + 1.5))
    image = axes.imshow(grid, aspect="auto", cmap="viridis", vmin=0, vmax=100)
    axes.set_xticks(range(len(editors)), editors, rotation=30, ha="right")
    axes.set_yticks(
        range(len(strata)),
        [f"{s} (n={values[s, editors[0]]['n']})" if (s, editors[0]) in values else s for s in strata],
        fontsize=7,
    )
    for y, line in enumerate(grid):
        for x, value in enumerate(line):
            if value == value:  # not NaN
                axes.text(
                    x, y, f"{value:.0f}", ha="center", va="center", fontsize=6, color="white" if value < 50 else "black"
                )
    figure.colorbar(image, ax=axes, label="efficacy (EM, points)")
    _title(axes, f"{task}: efficacy per stratum", model)
    return _png(figure)


def plots(board: Leaderboard) -> list[tuple[str, bytes]]:
    """(relative path, PNG) of every plot: per model and task a scatter and bars (LLM-Score when
    the judge scored the runs, else EM), and a per-stratum heatmap where the documents allow."""
    images = []
    for (model, task), rows in _by(board.summary, "model", "task").items():
        prefix = "llm_" if any(r["metric"].startswith("llm_") for r in rows) else ""
        base = f"{slug(model)}/{slug(task)}"
        images.append((f"{base}_scatter.png", scatter(model, task, rows, prefix)))
        images.append((f"{base}_bars.png", bars(model, task, rows, prefix)))
    for (model, task), rows in _by(board.strata, "model", "task").items():
        images.append((f"{slug(model)}/{slug(task)}_strata.png", heatmap(model, task, rows)))
    return images
