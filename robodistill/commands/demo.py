"""The main job on an embedded default: the robodistill pipeline end to end on ``push``.

    robodistill demo                          # ~15 min on 2 CPU cores -> out/demo/report.html
    robodistill demo --recipe demo/tiny       # every stage in a minute or two (smoke test)
    robodistill demo --skip video             # leave stages out

Collects expert demos, trains the diffusion teacher, runs RTI and SDP, distils a consistency
student, refines a PPO student with the teacher (RPD), benchmarks the methods and the teacher
against lerobot's DiffusionPolicy, runs the student in a 100 Hz control loop, distils and
streams a video world model, and writes one report. Each stage prints the ``robodistill``
commands it runs; a finished stage leaves ``<out>/stages/<name>.json`` and is reused on a
re-run, so a killed demo resumes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "run the pipeline end to end on push (resumable) and write one report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from robodistill.demo import STAGES

    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    parser.add_argument(
        "--recipe", default="demo/default", help="demo/<name> from policies/ or a .toml path"
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=[s.name for s in STAGES], help="stages to skip"
    )


def run(args: argparse.Namespace) -> int:
    from robodistill.demo import DemoConfig, run_demo
    from robodistill.recipes import load_recipe

    run_demo(load_recipe(args.recipe, DemoConfig), args.out, skip=frozenset(args.skip))
    return 0
