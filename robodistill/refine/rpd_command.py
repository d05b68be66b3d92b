"""Refine a teacher into a compact PPO student with a BC term (Refined Policy Distillation).

    robodistill refine rpd --teacher runs/pick_place_teacher --task pick_place \\
        --reward sparse --out runs/pick_rpd
    robodistill eval --policy runs/pick_rpd --episodes 100

The recipe (``--recipe rpd/<name>``, default ``rpd/<task>``) sets PPO's hyper-parameters, λ
and its schedule, the budget and the teacher's sampler options; ``--bc-weight 0`` gives PPO
from scratch with the same budget. ``--out`` receives train.log, metrics.jsonl (learning
curve), curves.png, the student checkpoint and summary.json; re-running a finished run
returns at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "RPD (Jülg et al. 2025): PPO student + BC towards the teacher on its own states"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``robodistill refine rpd``."""
    parser.add_argument(
        "--teacher",
        required=True,
        help="teacher checkpoint folder (any robodistill policy) or 'expert'",
    )
    parser.add_argument("--task", required=True, help="task to refine on (push, pick_place, ...)")
    parser.add_argument("--out", required=True, type=Path, help="run folder")
    parser.add_argument("--recipe", help="rpd/<name> or a .toml path (default: rpd/<task>)")
    parser.add_argument("--reward", choices=None, help="dense or sparse (default: the recipe's)")
    parser.add_argument("--steps", type=int, help="override total_steps (env steps)")
    parser.add_argument("--bc-weight", type=float, help="override λ (0 = PPO from scratch)")
    parser.add_argument("--bc-schedule", help="constant or cosine (default: the recipe's)")
    parser.add_argument("--seed", type=int, help="override the recipe's seed")


def run(args: argparse.Namespace) -> int:
    """Train as ``args`` say; errors a user can fix are ValueErrors that name the fix."""
    import torch

    from robodistill.refine.rpd import train_rpd

    torch.set_num_threads(1)
    config = load_config(
        args.recipe,
        args.task,
        reward_mode=args.reward,
        total_steps=args.steps,
        bc_weight=args.bc_weight,
        bc_schedule=args.bc_schedule,
        seed=args.seed,
    )
    summary = train_rpd(config, args.teacher, args.out)
    final = summary["final"]
    lo, hi = final["success_ci95"]
    print(
        f"{args.out}: success {final['success_rate']:.0%} (95% CI {lo:.0%}-{hi:.0%}) after "
        f"{summary['env_steps']} env steps, {summary['wall_time_s']:.0f} s"
    )
    return 0


def load_config(recipe: str | None, task: str, **overrides):  # -> RPDConfig
    """The recipe (default ``rpd/<task>``) with CLI overrides; its task must be ``task``."""
    from robodistill.configs import ConfigError
    from robodistill.recipes import load_recipe, require_method
    from robodistill.refine.rpd import RPDConfig, with_overrides

    name = recipe or f"rpd/{task}"
    require_method(name, "rpd", "rpd/push")
    config = load_recipe(name, RPDConfig)
    if recipe is not None and config.task != task:
        raise ConfigError(
            f"recipe {name!r} is for task {config.task!r}, not {task!r}: pass --task "
            f"{config.task} or a recipe for {task!r}"
        )
    return with_overrides(config, task=task, **overrides)
