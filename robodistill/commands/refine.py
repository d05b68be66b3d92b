"""RL refinement of a policy with stable-baselines3: ``robodistill refine <method> ...``.

Each method is a module with ``add_arguments(parser)`` and ``run(args) -> int``, registered in
:data:`REFINERS`; it writes checkpoints in the shared format, so ``robodistill eval`` and
``robodistill bench`` accept its output folder like any other policy.
"""

from __future__ import annotations

import argparse

HELP = "RL refinement with a teacher (RPD, on-policy distillation, COMPASS) -> checkpoints"

REFINERS: dict[str, str] = {
    "rpd": "robodistill.refine.rpd_command",
    "opd": "robodistill.refine.opd_command",
    "compass": "robodistill.compass.cli",
}
"""Method name -> module; extended as methods land."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from robodistill.cli import add_command_modules

    add_command_modules(
        parser.add_subparsers(dest="refiner", required=True, metavar="METHOD"), REFINERS
    )


def run(args: argparse.Namespace) -> int:
    return args.run(args)
