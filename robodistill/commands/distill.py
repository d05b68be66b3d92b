"""Distil a diffusion teacher into a 1-3 step consistency student (kill-safe; re-run to resume).

    robodistill distill --teacher runs/push_teacher --recipe consistency/push_state \\
        --out runs/push_cp
    robodistill eval --policy runs/push_cp --steps 1      # or --steps 2 / 3 (chained)

The teacher is a checkpoint of ``robodistill train`` with a ``diffusion/`` (DDPM) or ``edm/``
recipe; the student learns from the teacher's demonstrations unless ``--dataset`` names
others. Re-running the same command resumes the run in ``--out`` from its last checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

HELP = "distil a diffusion teacher into a 1-3 step consistency student (Consistency Policy)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``robodistill distill``."""
    parser.add_argument(
        "--teacher", required=True, type=Path, help="checkpoint folder of a diffusion/EDM teacher"
    )
    parser.add_argument(
        "--recipe",
        required=True,
        help="student recipe consistency/<name> from policies/ (e.g. consistency/push_state) "
        "or a .toml path",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="run folder for train.log, metrics, loss.png and checkpoints; rerun to resume",
    )
    parser.add_argument(
        "--dataset", type=Path, help="LeRobotDataset to distil on (default: the teacher's)"
    )
    parser.add_argument("--steps", type=int, help="override the recipe's train.steps")
    parser.add_argument("--seed", type=int, help="override the recipe's train.seed")


def run(args: argparse.Namespace) -> int:
    """Distil as ``args`` say; errors a user can fix are ValueErrors with the fix in them."""
    from robodistill.recipes import load_recipe, require_method
    from robodistill.students.consistency import ConsistencyConfig
    from robodistill.students.distill import distill

    require_method(args.recipe, "consistency", "consistency/push_state")
    config = load_recipe(args.recipe, ConsistencyConfig)
    overrides = {k: v for k, v in (("steps", args.steps), ("seed", args.seed)) if v is not None}
    if overrides:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, **overrides))
    distill(config, args.teacher, args.out, dataset_root=args.dataset)
    return 0
