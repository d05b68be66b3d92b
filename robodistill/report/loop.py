"""Control-loop timing (``bench loop``): period error, jitter, misses, latency per rate.

The bench keeps only summaries in its JSON; the histograms it draws from the raw per-cycle
records (``loop_period_error.png``, ``loop_latency.png`` beside ``loop.json``) are embedded as
they are when present.
"""

from __future__ import annotations

from typing import Any

from robodistill.report import fmt, plots
from robodistill.report.collect import Collection, Found
from robodistill.report.page import Figure, Section, Table

SIBLING_PLOTS = {
    "loop_period_error.png": "period error histograms (log counts), one per rate",
    "loop_latency.png": "action latency over time",
}


def loop_section(c: Collection) -> Section | None:
    """Per ``bench loop`` file: a table of its runs, their period errors, its own plots."""
    blocks: list[Any] = []
    for found in c.of("loop"):
        runs = found.data.get("runs", [])
        if runs:
            blocks.append(loop_table(found, c))
            blocks.append(period_figure(found, c))
        for name, what in SIBLING_PLOTS.items():
            png = found.path.with_name(name)
            if png.is_file():
                blocks.append(Figure(png.read_bytes(), f"{found.label(c.root)}: {what}."))
    return Section("loop", "Control loop timing", blocks) if blocks else None


def loop_table(found: Found, c: Collection) -> Table:
    """One row per rate and chunk transition."""
    rows = []
    for r in found.data.get("runs", []):
        misses = f"{fmt.num(r.get('deadline_misses'))} ({fmt.pct(r.get('deadline_miss_rate'))})"
        rows.append(
            [
                f"{fmt.num(r.get('hz'))} Hz",
                str(r.get("transition", fmt.MISSING)),
                fmt.num(r.get("cycles")),
                " / ".join(fmt.ms(fmt.get(r, "period_error_ms", k)) for k in _P3),
                fmt.ms(r.get("jitter_ms")),
                misses,
                " / ".join(fmt.ms(fmt.get(r, "action_latency_ms", k)) for k in _P2),
                " / ".join(fmt.ms(fmt.get(r, "inference_ms", k)) for k in _P2),
                str(sum((r.get("interventions") or {}).values())),
                fmt.success(r.get("success_rate"), r.get("success_ci95")),
            ]
        )
    d = found.data
    caption = (
        f"From {found.label(c.root)}: policy {d.get('policy', '?')} on {d.get('task', '?')}, "
        f"{fmt.num(d.get('seconds'))} s per run"
        + (", policy in a server process" if d.get("server") else "")
        + (", one core kept busy" if d.get("load") else "")
        + ". Period error = |actual - nominal period|; times in ms."
    )
    columns = [
        "rate",
        "transition",
        "cycles",
        "period err p50 / p99 / max",
        "jitter",
        "deadline misses",
        "action latency p50 / p99",
        "inference p50 / p99",
        "interventions",
        "success (95% CI)",
    ]
    return Table(columns, rows, caption)


_P2 = ("p50_ms", "p99_ms")
_P3 = ("p50_ms", "p99_ms", "max_ms")


def period_figure(found: Found, c: Collection) -> Figure:
    """p50 (solid) and p99 (light) period error per rate, one series per transition."""
    runs = found.data.get("runs", [])
    rates = list(dict.fromkeys(r.get("hz") for r in runs))
    transitions = list(dict.fromkeys(str(r.get("transition")) for r in runs))
    by_key = {(r.get("hz"), str(r.get("transition"))): r for r in runs}

    def heights(key: str) -> dict[str, list[float]]:
        return {
            t: [fmt.get(by_key, (hz, t), "period_error_ms", key) or 0.0 for hz in rates]
            for t in transitions
        }

    png = plots.bars(
        [f"{fmt.num(hz)} Hz" for hz in rates],
        heights("p50_ms"),
        upper=heights("p99_ms"),
        ylabel="period error (ms)",
        title="control period error",
        note="solid: p50, light: p99",
    )
    return Figure(png, f"Period error per rate, {found.label(c.root)}.", alt="period error")
