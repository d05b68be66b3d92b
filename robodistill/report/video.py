"""The video bench (``bench video``): streaming latency, quality per stage, long-stream drift."""

from __future__ import annotations

from typing import Any

from robodistill.report import fmt, plots
from robodistill.report.collect import Collection, Found
from robodistill.report.page import Figure, Section, Table


def video_section(c: Collection) -> Section | None:
    """Per ``bench video`` file: latency and quality tables and the drift curves."""
    blocks: list[Any] = []
    for found in c.of("video"):
        blocks.append(latency_table(found, c))
        blocks.append(quality_table(found, c))
        figure = drift_figure(found, c)
        if figure is not None:
            blocks.append(figure)
    return Section("video", "Video streaming", blocks) if blocks else None


def latency_table(found: Found, c: Collection) -> Table:
    """Teacher (whole clip) against the causal student streaming block by block."""
    lat = found.data.get("latency") or {}
    teacher = lat.get("teacher") or {}
    rows = [
        [
            f"teacher ({fmt.num(teacher.get('sample_steps'))} steps per clip)",
            fmt.ms(teacher.get("per_frame_ms")),
            fmt.ms(teacher.get("first_frame_ms")),
            "1×",
            "1×",
        ]
    ]
    for label, s in (lat.get("student") or {}).items():
        rows.append(
            [
                f"student, {fmt.num(s.get('steps'))} step(s) per block",
                fmt.ms(s.get("per_frame_ms")),
                fmt.ms(s.get("first_frame_ms")),
                fmt.ratio(fmt.get(lat, "per_frame_speedup", label)),
                fmt.ratio(fmt.get(lat, "first_frame_speedup", label)),
            ]
        )
    caption = (
        f"From {found.label(c.root)} ({found.data.get('source', '?')}): single-stream latency "
        "in ms; speed-ups are teacher time over student time (above 1: faster)."
    )
    columns = [
        "model",
        "per frame ms",
        "first frame ms",
        "per-frame speed-up",
        "first-frame speed-up",
    ]
    return Table(columns, rows, caption)


def quality_table(found: Found, c: Collection) -> Table:
    """PSNR/SSIM (and mouth error for the avatar) of each model and step setting."""
    quality = found.data.get("quality") or {}
    rows = []
    for model, scores in quality.items():
        if not isinstance(scores, dict):
            continue
        if "psnr" in scores:
            rows.append(_quality_row(model, scores))
        else:
            rows.extend(_quality_row(f"{model} {setting}", s) for setting, s in scores.items())
    caption = (
        "Quality on held-out clips (higher PSNR/SSIM is better; mouth error lower); "
        "'ffe' = First-Frame Enhancement, copy_last_context = a trivial baseline."
    )
    columns = ["model", "PSNR dB", "SSIM", "mouth error"]
    if all(row[3] == fmt.MISSING for row in rows):  # only the avatar has a mouth
        columns, rows = columns[:3], [row[:3] for row in rows]
    return Table(columns, rows, caption)


def _quality_row(name: str, scores: dict[str, Any]) -> list[str]:
    return [
        name,
        fmt.num(scores.get("psnr")),
        fmt.num(scores.get("ssim")),
        fmt.num(scores.get("mouth_error")),
    ]


def drift_figure(found: Found, c: Collection) -> Figure | None:
    """Each metric against generated frame index, with and without the attention sink."""
    drift = found.data.get("drift") or {}
    panels: dict[str, dict[str, dict[str, list[float]]]] = {}
    for variant in ("sink", "no_sink"):
        for metric, values in (fmt.get(drift, variant, "per_frame") or {}).items():
            line = {"x": list(range(len(values))), "mean": values}
            panels.setdefault(metric, {})[variant.replace("_", " ")] = line
    if not panels:
        return None
    png = plots.curves(panels, "generated frame index")
    caption = (
        f"Drift of streams {fmt.num(drift.get('frames'))} frames long (training clips: "
        f"{fmt.num(drift.get('clip_frames'))}), {found.label(c.root)}."
    )
    return Figure(png, caption, alt="drift curves")
