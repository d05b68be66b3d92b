"""The method table, latency against lerobot's DiffusionPolicy, and the Pareto plot.

Sources: ``bench methods`` (success, NFE and latency per control step of every sampling
method) and ``bench policy`` (per-chunk latency of our policy beside lerobot's, in one run).

Ratios compare the *mean latency per control step*: the compute a control loop pays on
average. With action chunking most steps only pop a queue, so p50 per step hides the
re-planning cost and p99 shows only it; the mean weighs both. lerobot's mean per control step
is recovered exactly from its re-planning and queue-pop timings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robodistill.bench.lerobot_baseline import LEROBOT_DIFFUSION as LEROBOT
from robodistill.report import fmt, plots
from robodistill.report.collect import Collection, Found
from robodistill.report.page import Figure, Note, Section, Table


def method_section(c: Collection) -> Section | None:
    """Tables of ``bench methods`` and ``bench policy`` results, with their ratios."""
    methods, policies = c.of("methods"), c.of("policy")
    if not methods and not policies:
        return None
    blocks: list[Any] = []
    reference = lerobot_reference(policies, c.root)
    for found in methods:
        blocks.append(methods_table(found, reference, c.root))
    if not methods:
        blocks.append(
            Note(
                "No `bench methods` result here, so no success per method: run "
                f"`robodistill bench methods --json {c.root}/methods.json ...`. "
                "Below: latency only, from `bench policy`."
            )
        )
    if methods and reference is None:
        blocks.append(
            Note(
                "No `bench policy` result with lerobot-diffusion at batch 1 here: "
                "the ratio to lerobot's DiffusionPolicy needs one."
            )
        )
    for found in policies:
        blocks.append(policy_table(found, c.root))
        blocks.append(policy_figure(found, c.root))
    return Section("methods", "Methods: success, NFE, latency", blocks)


def pareto_section(c: Collection) -> Section | None:
    """Success against p99 latency per control step, one plot per ``bench methods`` file."""
    blocks: list[Any] = []
    for found in c.of("methods"):
        points = [
            {
                "name": row.get("name", "?"),
                "family": row.get("family", "?"),
                "x": row.get("latency_p99_ms"),
                "success": row.get("success_rate"),
                "ci": row.get("success_ci95") or [row.get("success_rate")] * 2,
            }
            for row in found.data.get("methods", [])
        ]
        points = [p for p in points if fmt.num(p["x"]) != fmt.MISSING and p["success"] is not None]
        if not points:
            continue
        title = f"{found.data.get('task', '')}: {found.label(c.root)}"
        png = plots.pareto(points, "inference latency p99 per control step (ms)", title)
        blocks.append(
            Figure(
                png,
                f"Success against latency ({found.label(c.root)}); the line is the Pareto front.",
                alt="Pareto plot",
            )
        )
    return Section("pareto", "Pareto: success against latency", blocks) if blocks else None


def teacher_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The teacher's reference row: DDPM over all K steps (``ddpm100``), else the diffusion
    row with the most evaluations per step."""
    by_name = {r.get("name"): r for r in rows}
    if "ddpm100" in by_name:
        return by_name["ddpm100"]
    diffusion = [r for r in rows if r.get("family") == "diffusion"]
    return max(diffusion, key=lambda r: r.get("nfe_per_control_step") or 0, default=None)


def methods_table(found: Found, reference: tuple[float, str] | None, root: Path) -> Table:
    """One row per method of a ``bench methods`` file, ratios to its teacher and to lerobot."""
    rows = found.data.get("methods", [])
    teacher = teacher_row(rows)
    teacher_mean = teacher.get("latency_mean_ms") if teacher else None
    table_rows = []
    for r in rows:
        mean = r.get("latency_mean_ms")
        table_rows.append(
            [
                r.get("name", "?"),
                r.get("family", "?"),
                fmt.success(r.get("success_rate"), r.get("success_ci95")),
                fmt.num(r.get("episodes")),
                fmt.num(r.get("nfe_per_control_step")),
                fmt.ms(r.get("latency_p50_ms")),
                fmt.ms(r.get("latency_p99_ms")),
                fmt.ms(mean),
                fmt.ratio(_div(mean, teacher_mean)),
                fmt.ratio(_div(mean, reference[0] if reference else None)),
            ]
        )
    teacher_name = teacher.get("name") if teacher else "none"
    caption = (
        f"{found.data.get('task', '?')}, from {found.label(root)} (`bench methods`): success over "
        "all episodes of all checkpoints of a method (95% Wilson interval); NFE, latency (ms) "
        "per control step from a single-env run. Ratios: mean latency per control step over "
        f"the teacher's ({teacher_name}) and over "
        + (reference[1] if reference else "lerobot's (not measured here)")
        + "; below 1 is faster."
    )
    columns = [
        "method",
        "family",
        "success (95% CI)",
        "episodes",
        "NFE / step",
        "p50 ms",
        "p99 ms",
        "mean ms",
        "vs teacher",
        "vs lerobot",
    ]
    return Table(columns, table_rows, caption)


def per_step_mean(result: dict[str, Any]) -> float | None:
    """Mean latency per control step of a ``bench policy`` result: its re-planning calls and
    queue pops pooled, weighted by how many of each were timed."""
    chunk, pop = result.get("chunk_latency") or {}, result.get("queue_pop_latency") or {}
    n_chunk, n_pop = chunk.get("n"), pop.get("n")
    if not n_chunk or n_pop is None or chunk.get("mean_ms") is None:
        return None
    pop_total = pop.get("mean_ms", 0.0) * n_pop if n_pop else 0.0
    return (chunk["mean_ms"] * n_chunk + pop_total) / (n_chunk + n_pop)


def lerobot_reference(policies: list[Found], root: Path) -> tuple[float, str] | None:
    """lerobot's DiffusionPolicy as shipped (DDPM over all K steps, else its largest NFE) at
    batch 1: (mean ms per control step, a description of where the number comes from)."""
    candidates = []
    for found in policies:
        if fmt.get(found.data, "setup", "batch_size") not in (1, None):
            continue
        for r in found.data.get("results", []):
            mean = per_step_mean(r)
            if r.get("policy") == LEROBOT and mean is not None:
                candidates.append((r.get("sampler") == "ddpm", r.get("nfe") or 0, mean, r, found))
    if not candidates:
        return None
    _, _, mean, r, found = max(candidates, key=lambda t: (t[0], t[1]))
    sampler = (r.get("sampler") or "").upper()
    return mean, (
        f"lerobot's DiffusionPolicy ({sampler}-{r.get('nfe')}, {fmt.ms(mean)} ms, measured in "
        f"another run: {found.label(root)})"
    )


def policy_table(found: Found, root: Path) -> Table:
    """Per-chunk latency of every policy and NFE of a ``bench policy`` file, with its ratios."""
    ratios = {(q.get("policy"), q.get("nfe")): q for q in found.data.get("ratios", [])}
    results = found.data.get("results", [])
    full = {}
    for r in results:  # each policy's largest NFE: its full schedule
        if r.get("nfe", 0) >= full.get(r.get("policy"), {}).get("nfe", 0):
            full[r.get("policy")] = r
    rows = []
    for r in results:
        q = ratios.get((r.get("policy"), r.get("nfe")), {})
        chunk = r.get("chunk_latency") or {}
        own_full = fmt.get(full, r.get("policy"), "chunk_latency", "p50_ms")
        rows.append(
            [
                r.get("policy", "?"),
                fmt.num(r.get("nfe")),
                r.get("sampler") or fmt.MISSING,
                fmt.ms(chunk.get("p50_ms")),
                fmt.ms(chunk.get("p99_ms")),
                fmt.ms(per_step_mean(r)),
                fmt.ratio(_div(chunk.get("p50_ms"), own_full)),
                f"{fmt.ratio(q.get('p50'))} / {fmt.ratio(q.get('p99'))}" if q else fmt.MISSING,
                q.get("baseline", fmt.MISSING),
            ]
        )
    setup = found.data.get("setup", {})
    caption = (
        f"From {found.label(root)} (`bench policy`): latency (ms) of the re-planning call "
        f"(one chunk of Ta actions), {setup.get('chunks', '?')} chunks each, batch "
        f"{setup.get('batch_size', '?')}, contestants taking turns in one run; mean per "
        "control step pools re-planning and queue pops. 'vs own full' is the p50 over the "
        "same policy's largest NFE; 'vs baseline' is p50 / p99 over the baseline at the same "
        "NFE (below 1: faster)."
    )
    columns = [
        "policy",
        "NFE",
        "sampler",
        "chunk p50 ms",
        "chunk p99 ms",
        "mean ms / step",
        "vs own full",
        "vs baseline p50 / p99",
        "baseline",
    ]
    return Table(columns, rows, caption)


def policy_figure(found: Found, root: Path) -> Figure:
    """p50 (solid) and p99 (light) chunk latency per policy, grouped by NFE."""
    results = [r for r in found.data.get("results", []) if isinstance(r.get("nfe"), int)]
    nfes = sorted({r["nfe"] for r in results}, reverse=True)
    names = list(dict.fromkeys(r.get("policy") for r in results))
    by_key = {(r.get("policy"), r.get("nfe")): r.get("chunk_latency") or {} for r in results}

    def heights(key: str) -> dict[str, list[float]]:
        return {n: [by_key.get((n, k), {}).get(key) or 0.0 for k in nfes] for n in names}

    png = plots.bars(
        [f"NFE {n}" for n in nfes],
        heights("p50_ms"),
        upper=heights("p99_ms"),
        ylabel="latency per chunk (ms)",
        title="per-chunk inference latency",
        note="solid: p50, light: p99",
    )
    return Figure(png, f"Per-chunk latency from {found.label(root)}.", alt="latency bars")


def _div(a: Any, b: Any) -> float | None:
    if fmt.num(a) == fmt.MISSING or fmt.num(b) == fmt.MISSING or not b:
        return None
    return a / b
