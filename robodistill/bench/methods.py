"""Fast diffusion methods side by side on one task: success, NFE and latency per control step.

    robodistill bench methods --task push --teacher runs/push_teacher \\
        [--sdp runs/push_sdp_h2_s0 runs/push_sdp_h2_s1 ...] --episodes 100 \\
        --json out/methods_push.json

Evaluates, in one run: the teacher with DDPM-100, DDIM-10 and DDIM-5 chunk sampling; RTI-DP
(K′ = 1, 2, 4 and the K′ chosen by the Theorem 1 bound, each with and without re-noising) over
the DDPM-100 schedule; Streaming Diffusion Policy for every SDP checkpoint, grouped by its
h; and consistency students (``--consistency``) with 1 and 3 steps. Several checkpoint dirs
per method (training seeds) are pooled: each is evaluated on the same ``--episodes`` seeded
episodes and the success interval is over all of them.

For every method: success with a 95% Wilson interval (``--num-envs`` vectorized envs), and, from
a separate single-env run of ``--latency-episodes`` episodes (what a control loop pays), NFE
(evaluations of ε_θ) and latency p50/p99 per control step. Writes the JSON plus
``<stem>_latency.png`` (success against p99 latency, with the Pareto front) and ``<stem>_nfe.png``
(success against NFE per control step) beside it.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HELP = "DDPM/DDIM vs RTI-DP vs SDP: success, NFE, latency per control step -> JSON + plots"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True)
    parser.add_argument(
        "--teacher", nargs="+", required=True, type=Path, help="diffusion checkpoint dir(s)"
    )
    parser.add_argument("--sdp", nargs="*", default=[], type=Path, help="SDP checkpoint dir(s)")
    parser.add_argument(
        "--consistency",
        nargs="*",
        default=[],
        type=Path,
        help="consistency student dir(s) (robodistill distill)",
    )
    parser.add_argument(
        "--consistency-steps", type=int, nargs="+", default=[1, 3], help="student steps swept"
    )
    parser.add_argument("--episodes", type=int, default=100, help="per checkpoint")
    parser.add_argument("--seed", type=int, default=1000, help="episode i uses seed + i")
    parser.add_argument("--num-envs", type=int, default=25, help="vectorized envs for success")
    parser.add_argument(
        "--latency-episodes", type=int, default=2, help="single-env episodes timed per method"
    )
    parser.add_argument("--rti-steps", type=int, nargs="+", default=[1, 2, 4], help="K' swept")
    parser.add_argument(
        "--rti-schedule", type=int, default=100, help="DDPM steps RTI takes its last K' from"
    )
    parser.add_argument(
        "--bound-target",
        type=float,
        default=0.5,
        help="the bound's K' is the smallest that provably shrinks the guess error this much",
    )
    parser.add_argument("--bound-samples", type=int, default=16, help="points for Lipschitz")
    parser.add_argument(
        "--dataset", type=Path, default=None, help="data for Lipschitz (default: the teacher's)"
    )
    parser.add_argument(
        "--only", nargs="+", default=None, help="run only these method names (e.g. ddim10)"
    )
    parser.add_argument("--json", type=Path, required=True, help="write the result here")


@dataclass
class Method:
    """One row of the benchmark: a name, its load options and the checkpoints it runs on."""

    name: str
    family: str
    options: dict[str, Any]
    checkpoints: list[Path]
    results: list[dict[str, Any]] = field(default_factory=list)


def run(args: argparse.Namespace) -> int:
    from robodistill.bench.policy import machine_info
    from robodistill.files import write_json_atomic

    start = time.perf_counter()
    contraction = _contraction(args)
    bound_k = contraction["theorem_choice"]
    methods = _methods(args, bound_k)
    if args.only:
        unknown = sorted(set(args.only) - {m.name for m in methods})
        if unknown:
            raise ValueError(
                f"--only {unknown}: no such method; known: {[m.name for m in methods]}"
            )
        methods = [m for m in methods if m.name in args.only]
    rows = []
    for method in methods:
        for ckpt in method.checkpoints:
            method.results.append(_evaluate(method, ckpt, args))
        rows.append(_summarize(method))
        print(_line(rows[-1]), flush=True)
    report = {
        "bench": "methods",
        "task": args.task,
        "teachers": [str(p) for p in args.teacher],
        "sdp": [str(p) for p in args.sdp],
        "consistency": [str(p) for p in args.consistency],
        "episodes_per_checkpoint": args.episodes,
        "seed": args.seed,
        "num_envs": args.num_envs,
        "latency_episodes": args.latency_episodes,
        "contraction": contraction,
        "rti_sweep": _rti_sweep(rows, bound_k),
        "methods": rows,
        "machine": machine_info(),
        "wall_time_s": time.perf_counter() - start,
    }
    write_json_atomic(args.json, report)
    plots = _plot(rows, args.json)
    print(f"wrote {args.json}, " + ", ".join(str(p) for p in plots))
    return 0


def _contraction(args: argparse.Namespace) -> dict[str, Any]:
    """Lipschitz estimate and Theorem 1 bounds of the first teacher over the RTI schedule."""
    from robodistill.checkpoint import read_checkpoint
    from robodistill.fast.lipschitz import contraction_report, training_windows
    from robodistill.policy import load_policy

    teacher = args.teacher[0]
    policy = load_policy(
        teacher, args.task, scheduler="ddpm", num_inference_steps=args.rti_schedule
    )
    dataset = args.dataset or Path(read_checkpoint(teacher).meta["dataset"]["root"])
    obs, actions = training_windows(policy, dataset, args.bound_samples, seed=args.seed)
    t0 = time.perf_counter()
    report = contraction_report(policy, obs, actions, target=args.bound_target, seed=args.seed)
    out = {"teacher": str(teacher), "dataset": str(dataset), **report.to_json()}
    out["seconds"] = time.perf_counter() - t0
    print(
        f"Lipschitz of eps_theta (max over {args.bound_samples} points x "
        f"{len(report.timesteps)} steps): {report.lipschitz_max:.2f}; bound's K' = "
        f"{report.theorem_choice} (Theorem 1), {report.jacobian_choice} (measured Jacobians)",
        flush=True,
    )
    return out


def _methods(args: argparse.Namespace, bound_k: int) -> list[Method]:
    from robodistill.checkpoint import read_checkpoint

    teachers = list(args.teacher)
    methods = [
        Method("ddpm100", "diffusion", {"scheduler": "ddpm", "num_inference_steps": 100}, teachers),
        Method("ddim10", "diffusion", {"scheduler": "ddim", "num_inference_steps": 10}, teachers),
        Method("ddim5", "diffusion", {"scheduler": "ddim", "num_inference_steps": 5}, teachers),
    ]
    for k in sorted({*args.rti_steps, bound_k}):
        for renoise in (False, True):
            options = {
                "sampler": "rti",
                "scheduler": "ddpm",
                "num_inference_steps": args.rti_schedule,
                "rti_steps": k,
                "rti_renoise": renoise,
            }
            name = f"rti_k{k}_{'renoise' if renoise else 'asis'}"
            methods.append(Method(name, "rti", options, teachers))
    by_h: dict[int, list[Path]] = {}
    for ckpt in args.sdp:
        meta = read_checkpoint(ckpt).meta
        if meta["method"] != "sdp":
            raise ValueError(f"--sdp {ckpt} is a {meta['method']!r} checkpoint, not an sdp one")
        by_h.setdefault(meta["config"]["streaming"]["num_chunks"], []).append(ckpt)
    for h, ckpts in sorted(by_h.items()):
        methods.append(Method(f"sdp_h{h}", "sdp", {"sampler": "sdp"}, ckpts))
    for ckpt in args.consistency:
        method = read_checkpoint(ckpt).meta["method"]
        if method != "consistency":
            raise ValueError(
                f"--consistency {ckpt} is a {method!r} checkpoint; pass the output folder of "
                "`robodistill distill`"
            )
    if args.consistency:
        for steps in args.consistency_steps:
            options = {"num_inference_steps": steps}
            methods.append(Method(f"cp_{steps}step", "consistency", options, args.consistency))
    return methods


def _evaluate(method: Method, ckpt: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Success over ``args.episodes`` episodes; NFE and latency from a single-env run."""
    from robodistill.evaluation import EvalConfig, evaluate
    from robodistill.policy import load_policy

    policy = load_policy(ckpt, args.task, seed=args.seed, **method.options)
    success = evaluate(
        policy,
        EvalConfig(task=args.task, episodes=args.episodes, seed=args.seed, num_envs=args.num_envs),
        policy_name=method.name,
    )
    counter = _NfeCounter(policy)
    timed = evaluate(
        policy,
        EvalConfig(task=args.task, episodes=args.latency_episodes, seed=args.seed, num_envs=1),
        policy_name=method.name,
    )
    counter.close()
    control_steps = sum(r["length"] for r in timed.per_episode)
    return {
        "checkpoint": str(ckpt),
        "episodes": success.episodes,
        "successes": sum(r["success"] for r in success.per_episode),
        "success_rate": success.success_rate,
        "mean_length": success.mean_length,
        "eval_wall_time_s": success.wall_time_s,
        "control_steps_timed": control_steps,
        "nfe_per_control_step": counter.evaluations / control_steps,
        "latency_ms": timed.inference,
    }


class _NfeCounter:
    """Counts evaluations of ε_θ (per env) through a hook on the U-Net's output layer, which
    every evaluation runs (``forward`` or, with a precomputed FiLM schedule, ``modulated``)."""

    def __init__(self, policy: Any) -> None:
        for attr in ("teacher", "base"):  # RTIPolicy.teacher, StreamingPolicy.base
            policy = getattr(policy, attr, policy)
        self.evaluations = 0
        self._hook = policy.model.unet.final.register_forward_hook(self._count)

    def _count(self, module: Any, inputs: tuple, output: Any) -> None:
        self.evaluations += output.shape[0]  # (n, Da, Tp) noise for n envs

    def close(self) -> None:
        self._hook.remove()


def _summarize(method: Method) -> dict[str, Any]:
    """Pool the checkpoints of a method: one success interval, mean NFE and latencies."""
    import numpy as np

    from robodistill.stats import wilson_interval

    results = method.results
    successes = sum(r["successes"] for r in results)
    episodes = sum(r["episodes"] for r in results)
    rates = [r["success_rate"] for r in results]
    return {
        "name": method.name,
        "family": method.family,
        "options": method.options,
        "checkpoints": [r["checkpoint"] for r in results],
        "episodes": episodes,
        "success_rate": successes / episodes,
        "success_ci95": wilson_interval(successes, episodes),
        "success_rate_std_over_checkpoints": float(np.std(rates)) if len(rates) > 1 else None,
        "nfe_per_control_step": float(np.mean([r["nfe_per_control_step"] for r in results])),
        "latency_p50_ms": float(np.mean([r["latency_ms"]["p50_ms"] for r in results])),
        "latency_p99_ms": float(np.mean([r["latency_ms"]["p99_ms"] for r in results])),
        "latency_mean_ms": float(np.mean([r["latency_ms"]["mean_ms"] for r in results])),
        "per_checkpoint": results,
    }


def _rti_sweep(rows: list[dict[str, Any]], bound_k: int) -> dict[str, Any]:
    """Best RTI K′ by success (ties: fewer steps) for each re-noise choice, and the bound's."""
    best = {}
    for mode in ("asis", "renoise"):
        candidates = [r for r in rows if r["family"] == "rti" and r["name"].endswith(mode)]
        if candidates:
            top = max(candidates, key=lambda r: (r["success_rate"], -r["options"]["rti_steps"]))
            best[mode] = {"rti_steps": top["options"]["rti_steps"], "success": top["success_rate"]}
    return {"bound_choice": bound_k, "best_by_sweep": best}


def _line(row: dict[str, Any]) -> str:
    lo, hi = row["success_ci95"]
    return (
        f"{row['name']:>18} | success {row['success_rate']:6.1%} ({lo:.0%}-{hi:.0%}) | "
        f"NFE/step {row['nfe_per_control_step']:6.2f} | latency p50 {row['latency_p50_ms']:7.2f} "
        f"ms, p99 {row['latency_p99_ms']:7.2f} ms"
    )


def _plot(rows: list[dict[str, Any]], json_file: Path) -> list[Path]:
    """Success against p99 latency (with the Pareto front) and against NFE per control step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from robodistill.bench.plots import save_figure

    outputs = []
    for key, label, suffix in (
        ("latency_p99_ms", "inference latency p99 per control step (ms)", "latency"),
        ("nfe_per_control_step", "NFE per control step", "nfe"),
    ):
        fig, ax = plt.subplots(figsize=(7.5, 5))
        families = sorted({r["family"] for r in rows})
        for i, family in enumerate(families):
            group = [r for r in rows if r["family"] == family]
            x = [max(r[key], 1e-3) for r in group]
            y = [r["success_rate"] for r in group]
            err = [
                [r["success_rate"] - r["success_ci95"][0] for r in group],
                [r["success_ci95"][1] - r["success_rate"] for r in group],
            ]
            ax.errorbar(x, y, yerr=err, fmt="o", color=f"C{i}", label=family, capsize=3)
            for r, xi, yi in zip(group, x, y, strict=True):
                ax.annotate(
                    r["name"], (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points"
                )
        front = _pareto_front([(max(r[key], 1e-3), r["success_rate"]) for r in rows])
        ax.step(*zip(*front, strict=True), where="post", color="k", alpha=0.4, label="Pareto front")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("success rate (95% CI)")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=8)
        fig.tight_layout()
        outputs.append(save_figure(fig, json_file.with_name(f"{json_file.stem}_{suffix}.png")))
    return outputs


def _pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not beaten by one that is at least as cheap and at least as successful."""
    front: list[tuple[float, float]] = []
    for cost, success in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or success > front[-1][1]:
            front.append((cost, success))
    return front
