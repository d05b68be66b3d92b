"""COMPASS across embodiments (``bench compass``): success per embodiment per stage.

Reads the bench's ``table`` (stage -> embodiment -> per-seed rates, mean, std, pooled 95%
interval), its ``claims`` (generalist against specialists and against the IL base) and its
residual-PPO-against-scratch learning curves; embeds ``<stem>_success.png`` when present.
"""

from __future__ import annotations

from typing import Any

from robodistill.report import fmt, plots
from robodistill.report.collect import Collection, Found
from robodistill.report.learning import extract_curves
from robodistill.report.page import Figure, Note, Section, Table

STAGES = {
    "base": "IL base",
    "specialist": "specialist",
    "generalist_round0": "generalist (no DAgger)",
    "generalist": "generalist",
}
"""Stage key -> column title, in pipeline order; other stages follow in file order."""


def compass_section(c: Collection) -> Section | None:
    """Per ``compass`` file: the success table, the bench's plot, claims and curves."""
    blocks: list[Any] = []
    for found in c.of("compass"):
        table = found.data.get("table")
        if not isinstance(table, dict) or not table:
            blocks.append(Note(f"{found.label(c.root)}: no success table in it."))
            continue
        blocks.append(success_table(found, c))
        plot = found.path.with_name(f"{found.path.stem}_success.png")
        if plot.is_file():
            caption = f"{found.label(c.root)}: success per embodiment, mean ± std over seeds."
            blocks.append(Figure(plot.read_bytes(), caption, alt="success per embodiment"))
        claims = found.data.get("claims")
        if isinstance(claims, dict):
            blocks.append(Note(_claims_text(claims)))
        blocks.extend(_curve_figures(found, c))
    return Section("compass", "Embodiments (COMPASS)", blocks) if blocks else None


def success_table(found: Found, c: Collection) -> Table:
    """Rows: embodiments (trained, then held out); columns: stages."""
    d = found.data
    table = d["table"]
    stages = [s for s in STAGES if s in table] + [s for s in table if s not in STAGES]
    embodiments = list(
        dict.fromkeys(
            [*d.get("trained_embodiments", []), *d.get("heldout_embodiments", [])]
            + [e for cells in table.values() for e in cells]
        )
    )
    rows = []
    for emb in embodiments:
        tags = ["demos"] if emb == d.get("demo_embodiment") else []
        tags += ["held out"] if emb in d.get("heldout_embodiments", []) else []
        name = f"{emb} ({', '.join(tags)})" if tags else emb
        rows.append([name, *(_cell(fmt.get(table, s, emb)) for s in stages)])
    seeds = len(d.get("runs", [])) or "?"
    caption = (
        f"From {found.label(c.root)} (`bench compass`): success on {d.get('task', '?')}, mean "
        f"± std over {seeds} seeds of {fmt.num(d.get('episodes'))} episodes, pooled 95% "
        "Wilson interval in brackets."
    )
    return Table(["embodiment", *(STAGES.get(s, s) for s in stages)], rows, caption)


def _cell(cell: Any) -> str:
    if not isinstance(cell, dict) or fmt.num(cell.get("mean")) == fmt.MISSING:
        return fmt.MISSING
    ci = cell.get("pooled_ci95") or []
    interval = f" [{fmt.pct(ci[0]).rstrip('%')}–{fmt.pct(ci[1])}]" if len(ci) == 2 else ""
    return f"{fmt.pct(cell['mean'])} ± {fmt.pct(cell.get('std'))}{interval}"


def _claims_text(claims: dict[str, Any]) -> str:
    gap = claims.get("generalist_minus_specialists_points")
    ratio = claims.get("generalist_over_base_non_demo")
    yes = {True: "yes", False: "no"}
    return (
        f"Generalist minus specialists: {fmt.num(gap)} points (within 5: "
        f"{yes.get(claims.get('within_5_points'), '?')}); generalist over IL base on the "
        f"embodiments without demos: {fmt.ratio(ratio)} (at least 3×: "
        f"{yes.get(claims.get('at_least_3x'), '?')})."
    )


def _curve_figures(found: Found, c: Collection) -> list[Figure]:
    """Residual PPO on the IL base against PPO from scratch, one figure per embodiment."""
    figures = []
    for emb, curves in (found.data.get("curves") or {}).items():
        panels = {m: ln for m, ln in extract_curves(curves).items() if "success" in m}
        if panels:
            caption = (
                f"{found.label(c.root)}, {emb}: success of training episodes, residual PPO "
                "against PPO from scratch (mean over seeds, band = ± std)."
            )
            figures.append(Figure(plots.curves(panels, "env steps"), caption, alt="curves"))
    return figures
