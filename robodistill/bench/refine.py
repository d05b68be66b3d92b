"""Learning curves of RL refinement: RPD vs PPO from scratch, and VLA-OPD's objectives.

    robodistill bench refine rpd --task pick_place --teacher runs/pick_place_teacher \\
        --reward dense sparse --seeds 0 1 2 --json out/refine/rpd_pick_place.json
    robodistill bench refine opd --task push --teacher runs/push_teacher \\
        --objectives reverse_kl forward_kl hard_ce --seeds 0 1 2 --json out/refine/opd_push.json

``rpd`` trains, per reward mode and seed, an RPD student (the recipe's λ) and PPO from scratch
(λ = 0, same budget, same network, same eval seeds); ``opd`` SFTs one student per seed and
refines a copy of it with every objective. Every run evaluates its student on the same seeded
episodes every ``eval.every`` env steps; the bench reports per step the mean and standard
deviation over seeds of success rate and return (and, for OPD, the student's policy entropy),
the final success pooled over seeds with a 95% Wilson interval, the teacher's success on the
same episodes (as deployed: its own sampler options), wall time per run, and for RPD the env
steps at which RPD's mean success first reaches PPO's final mean success. Runs live in
``<json stem>_runs/`` and are reused when the bench is re-run (finished runs are idempotent).
Writes the JSON and ``<stem>.png`` beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

HELP = "RPD vs PPO-from-scratch and OPD objectives: learning curves over seeds -> JSON + plot"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("method", choices=("rpd", "opd"), help="which refiner to benchmark")
    parser.add_argument("--task", required=True)
    parser.add_argument("--teacher", required=True, help="teacher checkpoint folder or 'expert'")
    parser.add_argument("--recipe", help="rpd/<name> or opd/<name> (default: <method>/<task>)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, help="override the recipe's env-step budget")
    parser.add_argument("--eval-every", type=int, help="override the recipe's eval.every")
    parser.add_argument("--eval-episodes", type=int, help="override the recipe's eval.episodes")
    parser.add_argument(
        "--reward", nargs="+", default=["dense", "sparse"], help="rpd: reward modes to run"
    )
    parser.add_argument(
        "--objectives",
        nargs="+",
        default=["reverse_kl", "forward_kl", "hard_ce"],
        help="opd: objectives to compare from the same SFT start",
    )
    parser.add_argument("--json", type=Path, required=True, help="write the result here")


def run(args: argparse.Namespace) -> int:
    import torch

    from robodistill.bench.policy import machine_info
    from robodistill.files import write_json_atomic

    torch.set_num_threads(1)
    if len(args.seeds) < 1:
        raise ValueError("--seeds needs at least one seed (3 or more for a spread)")
    runs_dir = args.json.with_name(f"{args.json.stem}_runs")
    start = time.perf_counter()
    groups = _rpd_groups(args, runs_dir) if args.method == "rpd" else _opd_groups(args, runs_dir)
    config = groups.pop("_config")
    report = {
        "method": args.method,
        "task": args.task,
        "teacher": args.teacher,
        "teacher_options": config.teacher_options,
        "seeds": args.seeds,
        "teacher_success": _teacher_success(args.teacher, config),
        "groups": groups,
        "comparisons": _comparisons(groups) if args.method == "rpd" else _opd_summary(groups),
        "machine": machine_info(),
        "wall_time_s": time.perf_counter() - start,
    }
    write_json_atomic(args.json, report)
    plot = _plot(report, args.json.with_suffix(".png"))
    print(f"wrote {args.json}, {plot}")
    return 0


def _rpd_groups(args: argparse.Namespace, runs_dir: Path) -> dict[str, Any]:
    from robodistill.refine.rpd import train_rpd
    from robodistill.refine.rpd_command import load_config

    groups: dict[str, Any] = {}
    for reward in args.reward:
        base = load_config(args.recipe, args.task, reward_mode=reward, total_steps=args.steps)
        base = _with_eval(base, args)
        groups["_config"] = base
        for name, lam in (("rpd", base.bc_weight), ("ppo", 0.0)):
            summaries = []
            for seed in args.seeds:
                config = dataclasses.replace(base, bc_weight=lam, seed=seed)
                out = runs_dir / f"{name}_{reward}_s{seed}"
                print(f"--- {out.name}", flush=True)
                summaries.append(train_rpd(config, args.teacher, out))
            groups[f"{name}_{reward}"] = _aggregate(summaries)
    return groups


def _opd_groups(args: argparse.Namespace, runs_dir: Path) -> dict[str, Any]:
    from robodistill.refine.opd import load_config, sft_student, train_opd

    groups: dict[str, Any] = {}
    per_objective: dict[str, list[dict]] = {o: [] for o in args.objectives}
    for seed in args.seeds:
        base = _with_eval(
            load_config(args.recipe, args.task, total_steps=args.steps, seed=seed), args
        )
        groups["_config"] = base
        sft = sft_student(base, runs_dir / f"sft_s{seed}")
        for objective in args.objectives:
            config = dataclasses.replace(base, objective=objective)
            out = runs_dir / f"{objective}_s{seed}"
            print(f"--- {out.name}", flush=True)
            per_objective[objective].append(train_opd(config, args.teacher, out, sft))
    for objective, summaries in per_objective.items():
        groups[objective] = _aggregate(summaries)
    return groups


def _with_eval(config: Any, args: argparse.Namespace) -> Any:
    """``config`` with the bench's eval overrides applied."""
    changes = {"every": args.eval_every, "episodes": args.eval_episodes}
    changes = {k: v for k, v in changes.items() if v is not None}
    return dataclasses.replace(config, eval=dataclasses.replace(config.eval, **changes))


def _aggregate(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std over seeds at every evaluation step, and the pooled final success."""
    from robodistill.stats import wilson_interval

    steps = [p["step"] for p in summaries[0]["curve"]]
    curve: dict[str, Any] = {"step": steps}
    for key in ("success_rate", "mean_return", "entropy"):
        if key not in summaries[0]["curve"][0]:
            continue
        values = np.array([[p[key] for p in s["curve"]] for s in summaries])  # (seeds, evals)
        curve[f"{key}_mean"] = values.mean(0).tolist()
        curve[f"{key}_std"] = values.std(0).tolist()
    episodes = summaries[0]["config"]["eval"]["episodes"]
    finals = [s["final"]["success_rate"] for s in summaries]
    successes = round(sum(finals) * episodes)
    group = {
        "runs": [s["run_dir"] for s in summaries],
        "curve": curve,
        "final_success_per_seed": finals,
        "final_success": successes / (episodes * len(finals)),
        "final_success_ci95": wilson_interval(successes, episodes * len(finals)),
        "env_steps": summaries[0]["env_steps"],
        "wall_time_s_mean": float(np.mean([s["wall_time_s"] for s in summaries])),
        "teacher_time_s_mean": float(np.mean([s["teacher_time_s"] for s in summaries])),
    }
    if "sft" in summaries[0]:
        group["sft_success_per_seed"] = [s["sft"]["success_rate"] for s in summaries]
        group["sft_entropy_per_seed"] = [s["sft"]["entropy"] for s in summaries]
        group["final_entropy_per_seed"] = [s["final"]["entropy"] for s in summaries]
        group["other_tasks"] = [s["other_tasks"] for s in summaries]
    return group


def _teacher_success(teacher: str, config: Any) -> dict[str, Any]:
    """The teacher as deployed (its own sampler, chunked execution) on the eval episodes."""
    from robodistill.refine.curves import evaluate_student
    from robodistill.refine.teacher import load_teacher

    policy = load_teacher(teacher, config.task, config.teacher_options)
    start = time.perf_counter()
    result = evaluate_student(policy, config.task, config.eval)
    return {**result, "wall_time_s": time.perf_counter() - start}


def _comparisons(groups: dict[str, Any]) -> dict[str, Any]:
    """Per reward mode: RPD's final success vs PPO's, and when RPD first reaches PPO's final."""
    out = {}
    for name, rpd in groups.items():
        if not name.startswith("rpd_"):
            continue
        reward = name.removeprefix("rpd_")
        ppo = groups.get(f"ppo_{reward}")
        if ppo is None:
            continue
        target = ppo["curve"]["success_rate_mean"][-1]
        reached = [
            s
            for s, v in zip(rpd["curve"]["step"], rpd["curve"]["success_rate_mean"], strict=True)
            if v >= target
        ]
        out[reward] = {
            "rpd_final_success": rpd["final_success"],
            "ppo_final_success": ppo["final_success"],
            "ppo_final_mean_success": target,
            "rpd_steps_to_ppo_final": reached[0] if reached and target > 0 else None,
            "ppo_env_steps": ppo["env_steps"],
        }
    return out


def _opd_summary(groups: dict[str, Any]) -> dict[str, Any]:
    """Per objective: success and entropy after SFT and after OPD, other tasks before/after."""
    return {
        name: {
            "sft_success_mean": float(np.mean(g["sft_success_per_seed"])),
            "final_success_mean": float(np.mean(g["final_success_per_seed"])),
            "sft_entropy_mean": float(np.mean(g["sft_entropy_per_seed"])),
            "final_entropy_mean": float(np.mean(g["final_entropy_per_seed"])),
            "other_tasks_success": {
                phase: {
                    task: float(np.mean([o[phase][task]["success_rate"] for o in g["other_tasks"]]))
                    for task in g["other_tasks"][0][phase]
                }
                for phase in ("after_sft", "after_opd")
            },
        }
        for name, g in groups.items()
    }


def _plot(report: dict[str, Any], out_file: Path) -> Path:
    """Success, return (and entropy) against env steps: mean over seeds ± one std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from robodistill.bench.plots import save_figure

    keys = ["success_rate", "mean_return"] + (["entropy"] if report["method"] == "opd" else [])
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for i, (name, group) in enumerate(report["groups"].items()):
            curve = group["curve"]
            if f"{key}_mean" not in curve:
                continue
            x = np.array(curve["step"])
            mean, std = np.array(curve[f"{key}_mean"]), np.array(curve[f"{key}_std"])
            ax.plot(x, mean, marker="o", ms=3, color=f"C{i}", label=name)
            ax.fill_between(x, mean - std, mean + std, color=f"C{i}", alpha=0.2)
        if key == "success_rate":
            ax.axhline(
                report["teacher_success"]["success_rate"], color="k", ls="--", label="teacher"
            )
            ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(key.replace("_", " "))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    seeds = len(report["seeds"])
    fig.suptitle(f"{report['method'].upper()} on {report['task']}: mean ± std over {seeds} seeds")
    fig.tight_layout()
    return save_figure(fig, out_file)
