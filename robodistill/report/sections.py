"""The report's sections in page order; each is shown only when its results exist.

:data:`SECTIONS` is the explicit list of builders (``Collection -> Section | None``); a new
bench adds its builder here. This module also holds the small sections that belong to no bench:
an overview, the demo's stage records, the machine the results were measured on and the files
that were not recognized.
"""

from __future__ import annotations

import os
import platform
import re
import time
from collections import Counter
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from robodistill.report import fmt
from robodistill.report.collect import Collection, Found
from robodistill.report.compass import compass_section
from robodistill.report.evals import eval_section, stills_section
from robodistill.report.learning import curves_section
from robodistill.report.loop import loop_section
from robodistill.report.methods import method_section, pareto_section
from robodistill.report.page import Note, Section, Table
from robodistill.report.video import video_section

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def overview_section(c: Collection) -> Section:
    """What the report was built from, and when."""
    counts = Counter(f.kind for f in c.found)
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "none recognized"
    text = (
        f"Built {time.strftime('%Y-%m-%d %H:%M')} from {len(c.found) + len(c.unknown)} JSON "
        f"files under {c.root} ({kinds}"
        + (f"; {len(c.unknown)} not recognized" if c.unknown else "")
        + ")."
    )
    return Section("overview", "Overview", [Note(text)])


def stages_section(c: Collection) -> Section | None:
    """The records ``robodistill demo`` keeps of its finished stages."""
    stages = c.of("stage")
    if not stages:
        return None
    rows = []
    for found in stages:
        rest = {k: v for k, v in found.data.items() if k != "seconds"}
        summary = ", ".join(f"{k}: {_short(v)}" for k, v in list(rest.items())[:4])
        rows.append([found.path.stem, fmt.num(found.data.get("seconds")), summary or fmt.MISSING])
    caption = "Stages `robodistill demo` finished (a re-run reuses them)."
    return Section("stages", "Demo stages", [Table(["stage", "seconds", "record"], rows, caption)])


def _short(value: Any) -> str:
    text = fmt.num(value) if isinstance(value, int | float) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


MACHINE_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "CPU": lambda m: m.get("cpu_model"),
    "cores (logical / usable)": lambda m: _cores(m),
    "torch": lambda m: fmt.get(m, "versions", "torch"),
    "python": lambda m: m.get("python"),
    "platform": lambda m: m.get("platform"),
    "torch threads (OMP_NUM_THREADS)": lambda m: (
        f"{m['torch_threads']} ({m.get('OMP_NUM_THREADS') or 'unset'})"
        if "torch_threads" in m
        else None
    ),
    "libraries": lambda m: ", ".join(
        f"{k} {v}" for k, v in (m.get("versions") or {}).items() if k != "torch" and v
    ),
    "load average (1 / 5 / 15 min)": lambda m: " / ".join(
        f"{x:.1f}" for x in m.get("load_average_1_5_15") or m.get("loadavg_at_end") or []
    ),
}
"""Row label -> value taken from a recorded ``machine`` dict (see ``bench.policy.machine_info``)."""


def _cores(m: dict[str, Any]) -> str | None:
    logical = m.get("logical_cores", m.get("cpus"))
    usable = m.get("usable_cores")
    if logical is None:
        return None
    return f"{logical} / {usable}" if usable is not None else str(logical)


def machine_section(c: Collection) -> Section:
    """One column per distinct machine recorded in the results (or, if none records one, the
    machine this report was built on, said so)."""
    recorded = [f for f in c.found if isinstance(f.data.get("machine"), dict)]
    full = [f for f in recorded if f.data["machine"].get("cpu_model")] or recorded
    if not full:
        note = Note(
            "None of these results records its machine (the `bench` commands do, evaluations "
            "do not). The report was built on: " + _this_machine() + "."
        )
        return Section("machine", "Machine", [note])
    groups: dict[tuple, list[Found]] = {}
    for found in full:
        groups.setdefault(_machine_key(found.data["machine"]), []).append(found)
    columns = ["", *(_sources(g, c) for g in groups.values())]
    rows = []
    for label, field in MACHINE_FIELDS.items():
        values = [field(g[0].data["machine"]) for g in groups.values()]
        if any(values):
            rows.append([label, *(str(v) if v else fmt.MISSING for v in values)])
    rows.append(["date", *(_dates(g, c) for g in groups.values())])
    caption = "The machine each result was measured on, as the benches recorded it."
    return Section("machine", "Machine", [Table(columns, rows, caption, align_numbers=False)])


def _machine_key(m: dict[str, Any]) -> tuple:
    return (m.get("cpu_model"), _cores(m), m.get("python"), fmt.get(m, "versions", "torch"))


def _sources(group: list[Found], c: Collection) -> str:
    names = [f.label(c.root) for f in group]
    return ", ".join(names[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")


def _dates(group: list[Found], c: Collection) -> str:
    """Recorded dates (first - last); else a date in the results' path; else not recorded."""
    dates = sorted(str(f.data["machine"]["date"]) for f in group if f.data["machine"].get("date"))
    if dates:
        return dates[0] if dates[0] == dates[-1] else f"{dates[0]} – {dates[-1]}"
    for found in group:
        match = DATE.search(found.path.resolve().as_posix())
        if match:
            return f"{match.group(0)} (from the folder name)"
    return "not recorded"


def _this_machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        names = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    except OSError:
        pass
    try:
        torch = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch = "not installed"
    return (
        f"{cpu}, {os.cpu_count()} logical cores, torch {torch}, python "
        f"{platform.python_version()}, {platform.platform()}"
    )


def unknown_section(c: Collection) -> Section | None:
    """Files that no producer claims, and the folders not searched."""
    blocks: list[Any] = []
    if c.unknown:
        rows = [[path.relative_to(c.root).as_posix(), why] for path, why in c.unknown]
        caption = "Listed, not used: written by no bench this report knows."
        blocks.append(Table(["file", "why"], rows, caption))
    if c.skipped:
        names = ", ".join(p.relative_to(c.root).as_posix() for p in c.skipped[:10])
        more = f" and {len(c.skipped) - 10} more" if len(c.skipped) > 10 else ""
        blocks.append(Note(f"Dataset and checkpoint folders not searched: {names}{more}."))
    return Section("unknown", "Other files", blocks) if blocks else None


SECTIONS: list[Callable[[Collection], Section | None]] = [
    overview_section,
    method_section,
    pareto_section,
    loop_section,
    curves_section,
    compass_section,
    video_section,
    eval_section,
    stills_section,
    stages_section,
    machine_section,
    unknown_section,
]
"""Section builders in page order."""


def build_sections(c: Collection) -> list[Section]:
    """Every section that has something to show, in page order."""
    return [s for s in (build(c) for build in SECTIONS) if s is not None and s.blocks]
