"""COMPASS across seeds: success per embodiment for each stage, held-out body, sample efficiency.

    robodistill bench compass --runs runs/compass_s0 runs/compass_s1 runs/compass_s2 \\
        --episodes 100 --json out/compass/bench.json

Each ``--runs`` folder is one seed of ``robodistill refine compass``. On the same seeded
episodes (episode i: seed + i) it evaluates, per run: the IL base on every embodiment, each
specialist on its own embodiment, the generalist before DAgger (``distill_rounds/round_00``) and
after, on every training embodiment and on the held-out ones (spec embodiments no stage trained
on, e.g. ``car_large``). It reports per-seed rates, their mean and std, the pooled 95% Wilson
interval, the generalist's gap to the specialists, its ratio to the base on the embodiments not
in the demos, and reads the learning curves of residual PPO and PPO from scratch (same budget;
``refine compass --scratch-baseline NAME``). Writes the JSON, ``<stem>_success.png`` and
``<stem>_curve.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

HELP = "COMPASS: success per embodiment per stage over seeds, held-out body, residual vs scratch"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", nargs="+", required=True, type=Path, help="one run dir per seed")
    parser.add_argument("--episodes", type=int, default=100, help="per policy and embodiment")
    parser.add_argument("--seed", type=int, default=1000, help="episode i uses seed + i")
    parser.add_argument("--num-envs", type=int, default=10)
    parser.add_argument(
        "--heldout",
        nargs="*",
        default=None,
        help="held-out embodiments (default: every spec embodiment the runs did not train on)",
    )
    parser.add_argument("--json", type=Path, required=True, help="write the result here")


def run(args: argparse.Namespace) -> int:
    import torch

    from robodistill.bench.policy import machine_info
    from robodistill.files import write_json_atomic

    torch.set_num_threads(1)
    start = time.perf_counter()
    runs = [_read_run(path) for path in args.runs]
    trained = runs[0]["embodiments"]
    if any(r["embodiments"] != trained for r in runs):
        raise ValueError("--runs were trained on different embodiments: pass runs of one recipe")
    heldout = _heldout(runs[0]["task"], trained, args.heldout)
    per_run = [_evaluate_run(r, trained, heldout, args) for r in runs]
    table = _aggregate(per_run, trained + heldout)
    report = {
        "runs": [str(p) for p in args.runs],
        "task": runs[0]["task"],
        "demo_embodiment": runs[0]["demo"],
        "trained_embodiments": trained,
        "heldout_embodiments": heldout,
        "episodes": args.episodes,
        "seed": args.seed,
        "table": table,
        "claims": _claims(table, trained, runs[0]["demo"]),
        "dagger": [r["dagger"] for r in runs],
        "curves": _curves(runs),
        "stage_wall_time_s": [r["timings"] for r in runs],
        "per_run": per_run,
        "machine": machine_info(),
        "wall_time_s": time.perf_counter() - start,
    }
    write_json_atomic(args.json, report)
    plots = [_plot_success(report, args.json), _plot_curve(report, args.json)]
    _print_table(report)
    print(f"wrote {args.json}, " + ", ".join(str(p) for p in plots if p))
    return 0


# ----- evaluation -------------------------------------------------------------------------
def _read_run(path: Path) -> dict[str, Any]:
    from robodistill.checkpoint import read_checkpoint
    from robodistill.compass.policy import read_stage_info

    generalist = path / "generalist"
    if not (generalist / "config.json").is_file():
        raise ValueError(
            f"{path} has no generalist yet: finish it with `robodistill refine compass ... "
            f"--out {path}` (reruns resume)"
        )
    info = read_stage_info(read_checkpoint(generalist))
    logs = path / "logs"
    dagger = logs / "generalist" / "dagger.json"
    timings = logs / "timings.json"
    return {
        "path": path,
        "task": info.compass.task,
        "seed": info.compass.seed,
        "demo": info.demo_embodiment,
        "embodiments": list(info.compass.embodiments),
        "dagger": json.loads(dagger.read_text()) if dagger.is_file() else [],
        "timings": json.loads(timings.read_text()) if timings.is_file() else {},
    }


def _heldout(task: str, trained: list[str], requested: list[str] | None) -> list[str]:
    from robodistill.envs import get_spec

    spec = get_spec(task)
    if requested is None:
        return sorted(set(spec.embodiments) - set(trained))
    for name in requested:
        spec.resolve_embodiment(name)
    return list(requested)


def _evaluate_run(
    run: dict[str, Any], trained: list[str], heldout: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """Success of every stage of one run: {stage: {embodiment: {successes, episodes, ...}}}."""
    from robodistill.policy import load_policy

    path = run["path"]
    stages: dict[str, dict[str, Any]] = {"base": {}, "specialist": {}, "generalist": {}}
    for name in trained + heldout:
        stages["base"][name] = _success(load_policy(path / "base", embodiment=name), name, args)
        stages["generalist"][name] = _success(
            load_policy(path / "generalist", embodiment=name), name, args
        )
        round0 = path / "distill_rounds" / "round_00"
        if round0.is_dir():
            stages.setdefault("generalist_round0", {})[name] = _success(
                load_policy(round0, embodiment=name), name, args
            )
    for name in trained:
        policy = load_policy(path / "specialists" / name, embodiment=name)
        stages["specialist"][name] = _success(policy, name, args)
    print(f"evaluated {path}", flush=True)
    return {"run": str(path), "seed": run["seed"], "stages": stages}


def _success(policy: Any, embodiment: str, args: argparse.Namespace) -> dict[str, Any]:
    from robodistill.evaluation import EvalConfig, evaluate

    cfg = EvalConfig(
        task=policy.info.task,
        episodes=args.episodes,
        seed=args.seed,
        num_envs=args.num_envs,
        embodiment=embodiment,
    )
    result = evaluate(policy, cfg)
    return {
        "successes": sum(r["success"] for r in result.per_episode),
        "episodes": result.episodes,
        "success_rate": result.success_rate,
        "mean_length": result.mean_length,
    }


def _aggregate(per_run: list[dict[str, Any]], embodiments: list[str]) -> dict[str, Any]:
    """Per stage and embodiment: per-seed rates, mean, std over seeds, pooled Wilson CI."""
    import numpy as np

    from robodistill.stats import wilson_interval

    table: dict[str, Any] = {}
    for stage in per_run[0]["stages"]:
        for name in embodiments:
            cells = [r["stages"][stage].get(name) for r in per_run]
            if any(c is None for c in cells):
                continue
            rates = [c["success_rate"] for c in cells]
            wins, n = sum(c["successes"] for c in cells), sum(c["episodes"] for c in cells)
            table.setdefault(stage, {})[name] = {
                "per_seed": rates,
                "mean": float(np.mean(rates)),
                "std": float(np.std(rates)),
                "pooled_ci95": wilson_interval(wins, n),
            }
    return table


def _claims(table: dict[str, Any], trained: list[str], demo: str) -> dict[str, Any]:
    """The issue's two checks: generalist vs specialists, generalist vs base off the demos."""
    import numpy as np

    gen, spec, base = table["generalist"], table["specialist"], table["base"]
    gap = {e: 100 * (gen[e]["mean"] - spec[e]["mean"]) for e in trained}
    spec_mean = float(np.mean([spec[e]["mean"] for e in trained]))
    gen_mean = float(np.mean([gen[e]["mean"] for e in trained]))
    unseen = [e for e in trained if e != demo]
    base_unseen = float(np.mean([base[e]["mean"] for e in unseen])) if unseen else float("nan")
    gen_unseen = float(np.mean([gen[e]["mean"] for e in unseen])) if unseen else float("nan")
    if base_unseen > 0:
        ratio = gen_unseen / base_unseen
    else:  # the base never succeeds there: any success is an unbounded gain
        ratio = float("inf") if gen_unseen > 0 else float("nan")
    return {
        "specialists_mean": spec_mean,
        "generalist_mean": gen_mean,
        "generalist_minus_specialists_points": 100 * (gen_mean - spec_mean),
        "gap_points_per_embodiment": gap,
        "within_5_points": bool(abs(100 * (gen_mean - spec_mean)) <= 5),
        "non_demo_embodiments": unseen,
        "base_mean_non_demo": base_unseen,
        "generalist_mean_non_demo": gen_unseen,
        "generalist_over_base_non_demo": ratio,
        "at_least_3x": bool(ratio >= 3),
        "heldout": {
            e: {"base": base[e]["mean"], "generalist": gen[e]["mean"]}
            for e in gen
            if e not in trained
        },
    }


def _curves(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Training-episode curves of residual PPO and PPO from scratch, per embodiment and seed."""
    curves: dict[str, Any] = {}
    for run in runs:
        scratch_root = run["path"] / "scratch"
        names = sorted(p.name for p in scratch_root.iterdir()) if scratch_root.is_dir() else []
        for name in names:
            residual = run["path"] / "logs" / f"residual_{name}.jsonl"
            scratch = scratch_root / name / "curve.jsonl"
            final = scratch_root / name / "eval.json"
            if not (residual.is_file() and scratch.is_file()):
                continue
            entry = curves.setdefault(name, {"residual": [], "scratch": [], "scratch_eval": []})
            entry["residual"].append(_jsonl(residual))
            entry["scratch"].append(_jsonl(scratch))
            if final.is_file():
                entry["scratch_eval"].append(json.loads(final.read_text())["success_rate"])
    return curves


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ----- output -----------------------------------------------------------------------------
STAGE_LABELS = {
    "base": "IL base",
    "specialist": "specialist",
    "generalist_round0": "generalist (no DAgger)",
    "generalist": "generalist",
}


def _plot_success(report: dict[str, Any], json_path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from robodistill.bench.plots import save_figure

    table = report["table"]
    groups = report["trained_embodiments"] + report["heldout_embodiments"]
    stages = [s for s in STAGE_LABELS if s in table]
    width = 0.8 / len(stages)
    x = np.arange(len(groups))
    fig, ax = plt.subplots(figsize=(max(7.0, 2.2 * len(groups)), 4.5))
    for i, stage in enumerate(stages):
        means = [100 * table[stage].get(g, {}).get("mean", np.nan) for g in groups]
        stds = [100 * table[stage].get(g, {}).get("std", 0.0) for g in groups]
        offset = x + (i - (len(stages) - 1) / 2) * width
        bars = ax.bar(
            offset,
            np.nan_to_num(means),
            width * 0.9,
            yerr=stds,
            capsize=3,
            label=STAGE_LABELS[stage],
            color=f"C{i}",
        )
        ax.bar_label(bars, labels=["" if np.isnan(m) else f"{m:.0f}" for m in means], fontsize=7)
    labels = [
        f"{g}\n(held out)"
        if g in report["heldout_embodiments"]
        else f"{g}\n(demos)"
        if g == report["demo_embodiment"]
        else g
        for g in groups
    ]
    ax.set_xticks(x, labels)
    ax.set_ylabel("success (%), mean ± std over seeds")
    ax.set_ylim(0, 110)
    ax.set_title(
        f"COMPASS on {report['task']}: {len(report['runs'])} seeds x "
        f"{report['episodes']} episodes per bar",
        fontsize=10,
    )
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return save_figure(fig, json_path.with_name(f"{json_path.stem}_success.png"))


def _plot_curve(report: dict[str, Any], json_path: Path) -> Path | None:
    if not report["curves"]:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from robodistill.bench.plots import save_figure

    names = sorted(report["curves"])
    fig, axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 4.2), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for i, kind in enumerate(("residual", "scratch")):
            runs = [rows for rows in report["curves"][name][kind] if rows]  # rollouts that
            if not runs:  # ended no episode log no row
                continue
            label = "residual PPO on the IL base" if kind == "residual" else "PPO from scratch"
            for rows in runs:
                ax.plot(
                    [r["step"] for r in rows],
                    [100 * r["success_rate"] for r in rows],
                    color=f"C{i}",
                    alpha=0.25,
                    lw=0.8,
                )
            steps, mean = _mean_curve(runs)
            ax.plot(steps, mean, color=f"C{i}", lw=2, label=f"{label} (mean of {len(runs)})")
        ax.set_xlabel("environment steps")
        ax.set_ylabel("success of training episodes (%)")
        ax.set_ylim(-2, 102)
        ax.set_title(f"{name}: same PPO budget and settings", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, json_path.with_name(f"{json_path.stem}_curve.png"))


def _mean_curve(runs: list[list[dict[str, Any]]]) -> tuple[list[float], list[float]]:
    """Mean success over seeds on the first run's step grid (linear interpolation)."""
    import numpy as np

    grid = np.array([r["step"] for r in runs[0]], dtype=float)
    values = [
        np.interp(grid, [r["step"] for r in rows], [100 * r["success_rate"] for r in rows])
        for rows in runs
    ]
    return grid.tolist(), np.mean(values, axis=0).tolist()


def _print_table(report: dict[str, Any]) -> None:
    table = report["table"]
    groups = report["trained_embodiments"] + report["heldout_embodiments"]
    print("stage".ljust(24) + "".join(g.rjust(16) for g in groups))
    for stage, label in STAGE_LABELS.items():
        if stage not in table:
            continue
        cells = [
            f"{100 * table[stage][g]['mean']:.0f}±{100 * table[stage][g]['std']:.0f}%"
            if g in table[stage]
            else "-"
            for g in groups
        ]
        print(label.ljust(24) + "".join(c.rjust(16) for c in cells))
    print(json.dumps(report["claims"], indent=1))
