"""Benchmarks that write JSON and plots: ``robodistill bench <name> ...``.

Each benchmark is a module in :mod:`robodistill.bench` with ``add_arguments(parser)`` and
``run(args) -> int``, registered in :data:`BENCHES`. Ratios are always measured in one run,
because this kind of machine is noisy.
"""

from __future__ import annotations

import argparse

HELP = "benchmarks (latency, methods, control loop, ...) -> JSON + plots"

BENCHES: dict[str, str] = {
    "policy": "robodistill.bench.policy",
    "methods": "robodistill.bench.methods",
    "loop": "robodistill.bench.loop",
    "video": "robodistill.bench.video",
    "compass": "robodistill.bench.compass",
    "refine": "robodistill.bench.refine",
}
"""Benchmark name -> module; extended as stages land."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from robodistill.cli import add_command_modules

    add_command_modules(
        parser.add_subparsers(dest="bench", required=True, metavar="BENCH"), BENCHES
    )


def run(args: argparse.Namespace) -> int:
    return args.run(args)
