"""Gather every bench/eval JSON under a folder into one self-contained HTML page.

    robodistill report out/

Writes ``out/report.html`` (tables, plots embedded as PNG, no network, no external CSS/JS)
and ``out/report.md`` (the tables, for terminals and pull requests). Sections appear when their
results exist: the method table (success with 95% interval, NFE, latency per control step,
ratios to the teacher and to lerobot's DiffusionPolicy), the Pareto plot of success against
latency, control-loop timing, RL learning curves, success per embodiment, the video bench,
teacher/expert evaluations, video stills, and the machine the results were measured on. JSON
files no bench wrote are listed, not fatal.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "one self-contained HTML page (+ Markdown) from every bench/eval JSON in a folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folder", type=Path, help="searched recursively; report.html and report.md go here"
    )


def run(args: argparse.Namespace) -> int:
    from robodistill.report import write_report

    html_path, md_path = write_report(args.folder)
    print(md_path.read_text(encoding="utf-8"))
    print(f"wrote {html_path} and {md_path}")
    return 0
