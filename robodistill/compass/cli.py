"""COMPASS (Liu et al., NVIDIA 2025): imitation base -> residual PPO per embodiment -> generalist.

    robodistill refine compass --recipe compass/nav --dataset data/nav_dd --out runs/compass

Writes ``<out>/base``, ``<out>/specialists/<embodiment>`` and ``<out>/generalist`` (plus
``<out>/distill_rounds/round_<k>``), each a checkpoint that ``robodistill eval --policy DIR
[--embodiment NAME]`` loads. Re-running the command skips the stages already done; ``--until``
stops after a stage. ``--scratch-baseline car`` also trains PPO from scratch on ``car`` with
the specialists' budget (for ``robodistill bench compass``'s sample-efficiency curve).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "COMPASS: IL base -> residual PPO specialists -> distilled cross-embodiment generalist"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", default="compass/nav", help="compass/<name> or a .toml path")
    parser.add_argument("--dataset", type=Path, required=True, help="demos of one embodiment")
    parser.add_argument("--out", type=Path, required=True, help="run folder (resumable)")
    parser.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    parser.add_argument(
        "--specialist",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="use this specialist checkpoint for embodiment NAME instead of training one",
    )
    parser.add_argument(
        "--scratch-baseline",
        action="append",
        default=[],
        metavar="NAME",
        help="also train PPO from scratch on NAME with the same budget (sample-efficiency curve)",
    )
    parser.add_argument(
        "--until",
        default="generalist",
        choices=["base", "specialists", "generalist"],
        help="stop after this stage",
    )


def parse_specialists(items: list[str]) -> dict[str, Path]:
    """``["car=runs/x/specialists/car"]`` -> ``{"car": Path(...)}``; a ValueError if malformed."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--specialist {item!r}: write it as NAME=DIR, e.g. car=runs/c/car")
        out[name] = Path(path)
    return out


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from robodistill.compass.config import CompassConfig
    from robodistill.compass.pipeline import run_pipeline
    from robodistill.recipes import load_recipe

    cfg = load_recipe(args.recipe, CompassConfig)
    if args.seed is not None:
        cfg.seed = args.seed
    result = run_pipeline(
        cfg,
        args.dataset,
        args.out,
        specialists=parse_specialists(args.specialist),
        scratch=args.scratch_baseline,
        until=args.until,
    )
    for stage in ("base", "specialists", "generalist", "scratch"):
        if stage in result:
            print(f"{stage}: {result[stage]}")
    times = ", ".join(f"{k} {v:.0f} s" for k, v in result["wall_time_s"].items())
    print(f"wall time: {times}")
    return 0
