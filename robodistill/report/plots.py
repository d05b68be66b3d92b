"""The report's figures, drawn with matplotlib's Agg backend and returned as PNG bytes.

Every function takes plain numbers (no result files) so the section builders decide what is
plotted and the figures stay testable; nothing is written to disk except through
:func:`robodistill.bench.plots.grouped_bars`, shared with the benches for a common look.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DPI = 100


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_png(fig: Any) -> bytes:
    """The figure as PNG bytes; closes it."""
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()


def bars(
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    upper: Mapping[str, Sequence[float]] | None = None,
    ylabel: str,
    title: str,
    note: str | None = None,
) -> bytes:
    """Grouped bars (log scale) exactly as the benches draw them, as PNG bytes."""
    from robodistill.bench.plots import grouped_bars

    with tempfile.TemporaryDirectory(prefix="robodistill-report-") as tmp:
        path = grouped_bars(
            Path(tmp) / "bars.png",
            groups,
            series,
            upper=upper,
            ylabel=ylabel,
            title=title,
            note=note,
        )
        return path.read_bytes()


def pareto(points: Sequence[dict[str, Any]], xlabel: str, title: str) -> bytes:
    """Success (with 95% interval) against latency, log x, one colour per family, and the
    Pareto front (no other point is both at least as fast and at least as successful).

    Each point: ``name``, ``family``, ``x``, ``success``, ``ci`` (low, high).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    families = list(dict.fromkeys(p["family"] for p in points))
    for i, family in enumerate(families):
        group = [p for p in points if p["family"] == family]
        x = [max(p["x"], 1e-3) for p in group]
        y = [p["success"] for p in group]
        err = interval_errors(y, [p["ci"] for p in group])
        ax.errorbar(x, y, yerr=err, fmt="o", color=f"C{i % 10}", label=family, capsize=3)
        for p, xi, yi in zip(group, x, y, strict=True):
            ax.annotate(p["name"], (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    front = pareto_front([(max(p["x"], 1e-3), p["success"]) for p in points])
    ax.step(*zip(*front, strict=True), where="post", color="k", alpha=0.4, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("success rate (95% CI)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return to_png(fig)


def interval_errors(rates: Sequence[float], cis: Sequence[Sequence[float]]) -> list[list[float]]:
    """Error-bar lengths (below, above) of each rate's interval; never negative (a stored
    interval may end at 0.9999999 for a rate of 1.0)."""
    below = [max(0.0, r - c[0]) for r, c in zip(rates, cis, strict=True)]
    above = [max(0.0, c[1] - r) for r, c in zip(rates, cis, strict=True)]
    return [below, above]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """(cost, success) points not beaten by one at least as cheap and at least as successful."""
    front: list[tuple[float, float]] = []
    for cost, success in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or success > front[-1][1]:
            front.append((cost, success))
    return front


def success_bars(
    labels: Sequence[str], rates: Sequence[float], cis: Sequence[Sequence[float]]
) -> bytes:
    """Horizontal success-rate bars with their 95% intervals, one per evaluation."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.32 * len(labels)))
    y = list(range(len(labels)))[::-1]
    err = interval_errors(rates, cis)
    ax.barh(y, rates, xerr=err, color="C0", alpha=0.8, capsize=3)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("success rate (95% Wilson interval)")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return to_png(fig)


def curves(panels: Mapping[str, Mapping[str, dict[str, list[float]]]], xlabel: str) -> bytes:
    """One panel per metric, one line per run: ``panels[metric][run] = {x, mean, spread}``.

    ``spread`` (optional, same length as ``mean``) is drawn as a band mean ± spread.
    """
    import numpy as np

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    for ax, (metric, runs) in zip(axes[0], panels.items()):
        for i, (run, line) in enumerate(runs.items()):
            x, mean = np.asarray(line["x"], float), np.asarray(line["mean"], float)
            ax.plot(x, mean, color=f"C{i % 10}", label=run)
            if line.get("spread") is not None:
                spread = np.asarray(line["spread"], float)
                ax.fill_between(x, mean - spread, mean + spread, color=f"C{i % 10}", alpha=0.2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return to_png(fig)
