"""Teacher and expert evaluations (``robodistill eval --json``) and stills of their videos.

An evaluation records the video path as given on its command line (relative to where it ran),
so the video is looked for beside the JSON first (results copied elsewhere keep their videos
next to them), then at that path, then relative to the report folder and its parent.
"""

from __future__ import annotations

from pathlib import Path

from robodistill.report import fmt, plots
from robodistill.report.collect import Collection, Found
from robodistill.report.page import Figure, Section, Table
from robodistill.report.stills import still_png

MAX_STILLS = 16
"""Stills embedded at most (each is a ~100-300 kB PNG)."""


def eval_section(c: Collection) -> Section | None:
    """A table of every evaluation (experts first) and a bar plot of their success rates."""
    evals = sorted(c.of("eval"), key=lambda f: (f.data.get("policy") != "expert", str(f.path)))
    if not evals:
        return None
    rows = []
    for found in evals:
        d = found.data
        rows.append(
            [
                found.label(c.root),
                str(d.get("task", "?")),
                str(d.get("policy", "?")),
                fmt.num(d.get("episodes")),
                fmt.success(d.get("success_rate"), d.get("success_ci95")),
                fmt.num(d.get("mean_length")),
                fmt.num(d.get("mean_return")),
                fmt.ms(fmt.get(d, "inference", "p50_ms")),
                fmt.ms(fmt.get(d, "inference", "p99_ms")),
            ]
        )
    columns = [
        "result",
        "task",
        "policy",
        "episodes",
        "success (95% CI)",
        "mean length",
        "mean return",
        "call p50 ms",
        "call p99 ms",
    ]
    caption = (
        "`robodistill eval --json`: seeded episodes (episode i uses seed + i), success with a "
        "95% Wilson interval; call latency is one `select_action` for the whole batch of "
        "vectorized envs, so it is not comparable with the per-control-step latencies above."
    )
    blocks = [Table(columns, rows, caption)]
    plotted = [f for f in evals if fmt.num(f.data.get("success_rate")) != fmt.MISSING]
    if plotted:
        png = plots.success_bars(
            [f.label(c.root) for f in plotted],
            [f.data["success_rate"] for f in plotted],
            [f.data.get("success_ci95") or [f.data["success_rate"]] * 2 for f in plotted],
        )
        blocks.append(Figure(png, "Success rate of every evaluation.", alt="success bars"))
    return Section("evaluations", "Teacher and expert evaluations", blocks)


def stills_section(c: Collection) -> Section | None:
    """Frames of the videos the evaluations and the video bench wrote."""
    blocks = []
    for video, caption in _videos(c)[:MAX_STILLS]:
        png = still_png(video)
        if png is not None:
            blocks.append(Figure(png, caption, alt=f"frames of {video.name}", inline=True))
    return Section("stills", "Video stills", blocks) if blocks else None


def _videos(c: Collection) -> list[tuple[Path, str]]:
    """(video file, caption) for every video the video bench wrote, then every evaluation's."""
    videos = []
    for found in c.of("video"):
        stem = found.path.stem
        for suffix, what in (
            ("side_by_side", "ground truth | teacher | student"),
            ("long", "long stream: ground truth | student with sink | without"),
        ):
            video = found.path.with_name(f"{stem}_{suffix}.mp4")
            if video.is_file():
                videos.append((video, f"{found.label(c.root)}: {what}"))
    for found in c.of("eval"):
        video = find_video(found, c.root)
        if video is not None:
            videos.append((video, f"{found.label(c.root)}: {video.name}, first episodes"))
    return videos


def find_video(found: Found, root: Path) -> Path | None:
    """The evaluation's video file, wherever it can still be found (see the module doc)."""
    name = found.data.get("video")
    if not isinstance(name, str) or not name:
        return None
    given = Path(name)
    for candidate in (found.path.with_name(given.name), given, root / given, root.parent / given):
        if candidate.is_file():
            return candidate
    return None
