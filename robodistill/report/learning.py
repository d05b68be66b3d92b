"""RL learning curves (``bench refine``, and the residual-vs-scratch curves of ``bench
compass``), read defensively: these producers are young, so several shapes are accepted.

``"curves"`` is a dict ``run -> curve`` or a list of curves with a ``name``/``label``/
``method``. A curve is either

* columns: an x axis (``env_steps``, ``steps``, ``timesteps``, ``x``, ``step``) and, per
  metric, a list of numbers (``success``, optionally with ``success_std``/``_sem``/
  ``_spread``; ``success_mean`` counts as ``success``), a list of per-seed lists (mean and std
  over seeds are taken) or a dict ``{"mean": [...], "std": [...]}``;
* rows: a list of ``{"step": ..., "success_rate": ..., ...}`` (a metrics.jsonl);
* rows per seed: a list of such lists, interpolated onto the first seed's steps.

Anything else is skipped (with a note when nothing is readable), never fatal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robodistill.report import fmt, plots
from robodistill.report.collect import Collection, Found
from robodistill.report.page import Figure, Note, Section, Table

X_KEYS = ("env_steps", "steps", "timesteps", "total_timesteps", "x", "step")
NAME_KEYS = ("name", "label", "method", "run")
SPREAD_SUFFIXES = ("_std", "_sem", "_spread", "_ci")
MEAN_SUFFIX = "_mean"
SHOWN = ("success", "return")
"""Metrics plotted when a curve has any of them (else every metric, up to three)."""

Line = dict[str, list[float] | None]
"""``{"x": [...], "mean": [...], "spread": [...] or None}``."""


def curves_section(c: Collection) -> Section | None:
    """Per ``refine`` file: one panel per metric against env steps, and the final values."""
    blocks: list[Any] = []
    for found in c.of("refine"):
        panels = extract_curves(found.data.get("curves"))
        if not panels:
            blocks.append(Note(f"{found.label(c.root)}: no learning curve could be read."))
            continue
        blocks.append(Figure(plots.curves(panels, "env steps"), _curve_caption(found, c)))
        blocks.append(final_table(panels, found, c))
    return Section("curves", "RL learning curves", blocks) if blocks else None


def _curve_caption(found: Found, c: Collection) -> str:
    seeds = found.data.get("seeds")
    over = f" over {len(seeds) if isinstance(seeds, list) else seeds} seeds" if seeds else ""
    return f"{found.label(c.root)}: mean{over}, band = ± spread."


def extract_curves(curves: Any) -> dict[str, dict[str, Line]]:
    """``panels[metric][run] = line`` from any accepted shape (see the module doc)."""
    panels: dict[str, dict[str, Line]] = {}
    for run, raw in _named_curves(curves).items():
        curve = _as_columns(raw)
        x = next((curve[k] for k in X_KEYS if _numbers(curve.get(k))), None)
        if x is None:
            continue
        for metric, line in _metric_lines(curve, len(x)).items():
            panels.setdefault(metric, {})[run] = {"x": list(map(float, x)), **line}
    shown = {m: lines for m, lines in panels.items() if any(k in m for k in SHOWN)}
    return shown or dict(list(panels.items())[:3])


def _named_curves(curves: Any) -> dict[str, Any]:
    if isinstance(curves, dict):
        if any(k in curves for k in X_KEYS):  # a single curve
            return {"run": curves}
        return {str(k): v for k, v in curves.items() if isinstance(v, dict | list)}
    if isinstance(curves, list):
        if curves and all(_is_rows(c) for c in curves):  # one curve as rows (per seed)
            return {"run": curves}
        named = {}
        for i, curve in enumerate(c for c in curves if isinstance(c, dict)):
            name = next((str(curve[k]) for k in NAME_KEYS if k in curve), f"run {i}")
            named[name] = curve
        return named
    return {}


def _is_rows(value: Any) -> bool:
    """A row (a dict with a number under an x key), a list of rows, or a list of such lists."""
    if isinstance(value, dict):
        return any(isinstance(value.get(k), int | float) for k in X_KEYS)
    return isinstance(value, list) and bool(value) and all(_is_rows(v) for v in value)


def _as_columns(curve: Any) -> dict[str, Any]:
    """Rows, or rows per seed, as columns (per-seed columns hold one list per seed)."""
    if isinstance(curve, dict):
        return curve
    if not _is_rows(curve):
        return {}
    if isinstance(curve[0], dict):
        return _columns(curve)
    seeds = [_columns(rows) for rows in curve]
    x_key = next((k for k in X_KEYS if _numbers(seeds[0].get(k))), None)
    if x_key is None:
        return {}
    grid = seeds[0][x_key]
    out: dict[str, Any] = {x_key: grid}
    for key in seeds[0]:
        if key != x_key and all(_numbers(s.get(key)) and _numbers(s.get(x_key)) for s in seeds):
            out[key] = [np.interp(grid, s[x_key], s[key]).tolist() for s in seeds]
    return out


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    keys = [k for k in rows[0] if all(k in r for r in rows)]
    return {k: [r[k] for r in rows] for k in keys}


def _metric_lines(curve: dict[str, Any], length: int) -> dict[str, Line]:
    """Metric name -> mean (and spread) of every metric in ``curve`` with ``length`` points."""
    lines: dict[str, Line] = {}
    for key, value in curve.items():
        if key in X_KEYS or key in NAME_KEYS or key.endswith(SPREAD_SUFFIXES):
            continue
        metric = key.removesuffix(MEAN_SUFFIX)
        if isinstance(value, dict) and _numbers(value.get("mean"), length):
            spread = next((value[k] for k in ("std", "sem", "spread") if k in value), None)
            lines[metric] = {"mean": value["mean"], "spread": _numbers(spread, length)}
        elif _numbers(value, length):
            spread = next((curve[metric + s] for s in SPREAD_SUFFIXES if metric + s in curve), None)
            lines[metric] = {"mean": value, "spread": _numbers(spread, length)}
        elif isinstance(value, list) and value and all(_numbers(v, length) for v in value):
            per_seed = np.asarray(value, dtype=float)  # (seeds, points)
            lines[metric] = {"mean": per_seed.mean(0).tolist(), "spread": per_seed.std(0).tolist()}
    return lines


def _numbers(value: Any, length: int | None = None) -> list[float] | None:
    """``value`` if it is a list of numbers (of ``length`` items, when given), else None."""
    if not isinstance(value, list) or not value or (length is not None and len(value) != length):
        return None
    ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    return value if ok else None


def final_table(panels: dict[str, dict[str, Line]], found: Found, c: Collection) -> Table:
    """The last point of every run and metric: env steps, mean ± spread."""
    runs = list(dict.fromkeys(run for lines in panels.values() for run in lines))
    rows = []
    for run in runs:
        row = [run]
        for metric in panels:
            line = panels[metric].get(run)
            row.append(_final(line) if line else fmt.MISSING)
        last_x = next((lines[run]["x"][-1] for lines in panels.values() if run in lines), None)
        rows.append([*row, fmt.num(last_x)])
    caption = f"Final values, {found.label(c.root)} (mean ± spread at the last point)."
    return Table(["run", *panels, "env steps"], rows, caption)


def _final(line: Line) -> str:
    mean = line["mean"][-1]
    spread = line["spread"][-1] if line.get("spread") else None
    return fmt.num(mean) + (f" ± {fmt.num(spread, 2)}" if spread is not None else "")
