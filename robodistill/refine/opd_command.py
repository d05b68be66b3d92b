"""Distil a teacher into a binned-action student on the student's own states (VLA-OPD).

    robodistill refine opd --teacher runs/push_teacher --task push --objective reverse_kl \\
        --out runs/push_opd
    robodistill eval --policy runs/push_opd --episodes 100

Two phases in one run: SFT (behaviour cloning on the recipe's demo datasets), then on-policy
distillation: the student rolls out its own trajectories (no environment reward) and, at
every state it visits, is trained towards the teacher's per-dimension action distribution
(histogram of N teacher samples over the action bins). ``--objective`` picks reverse_kl (the
paper's), forward_kl or hard_ce. Re-running with the same recipe, objective and teacher
reuses the SFT checkpoint (``<out>/sft``) and returns at once when the run had finished.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "VLA-OPD (2026): SFT, then reverse-KL distillation on the student's own rollouts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``robodistill refine opd``."""
    parser.add_argument("--teacher", required=True, help="teacher checkpoint folder or 'expert'")
    parser.add_argument("--task", required=True, help="task to distil on (push, pick_place, ...)")
    parser.add_argument("--out", required=True, type=Path, help="run folder")
    parser.add_argument("--recipe", help="opd/<name> or a .toml path (default: opd/<task>)")
    parser.add_argument(
        "--objective", help="reverse_kl (default), forward_kl or hard_ce (default: the recipe's)"
    )
    parser.add_argument("--steps", type=int, help="override the on-policy env steps")
    parser.add_argument("--seed", type=int, help="override the recipe's seed")


def run(args: argparse.Namespace) -> int:
    """Train as ``args`` say; errors a user can fix are ValueErrors that name the fix."""
    import torch

    from robodistill.refine.opd import load_config, train_opd

    torch.set_num_threads(1)
    config = load_config(
        args.recipe, args.task, objective=args.objective, total_steps=args.steps, seed=args.seed
    )
    summary = train_opd(config, args.teacher, args.out)
    for phase in ("sft", "final"):
        point = summary[phase]
        lo, hi = point["success_ci95"]
        print(
            f"{phase}: success {point['success_rate']:.0%} (95% CI {lo:.0%}-{hi:.0%}), "
            f"entropy {point.get('entropy', float('nan')):.3f} nats/dim"
        )
    print(f"{args.out}: {summary['env_steps']} env steps, {summary['wall_time_s']:.0f} s")
    return 0
