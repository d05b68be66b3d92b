"""Learning curves of refinement runs: seeded evaluations during training, and their plots.

Every run evaluates its student every ``every`` environment steps on the same ``episodes``
seeded episodes (seeds ``seed .. seed+episodes-1``, disjoint from the training seeds), and
writes one JSON line per evaluation into ``<out>/metrics.jsonl``; :func:`plot_curves` draws
success, return (and policy entropy, when logged) against environment steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robodistill.policy import Policy

CURVE_KEYS = ("success_rate", "mean_return", "entropy")


@dataclass
class CurveConfig:
    """When and how a run evaluates its student."""

    every: int = 20_000
    """Environment steps between evaluations (plus one at step 0 and one at the end)."""
    episodes: int = 20
    seed: int = 100_000
    """Episode i of every evaluation uses seed + i (training envs use other seeds)."""
    num_envs: int = 10

    def __post_init__(self) -> None:
        if self.every <= 0 or self.episodes <= 0 or self.num_envs <= 0:
            raise ValueError("eval.every, eval.episodes and eval.num_envs must be positive")


def evaluate_student(
    policy: Policy, task: str, cfg: CurveConfig, reward_mode: str = "dense"
) -> dict[str, Any]:
    """Success rate with its 95% Wilson interval, mean return and length on the eval seeds."""
    from robodistill.evaluation import EvalConfig, evaluate

    result = evaluate(
        policy,
        EvalConfig(
            task=task,
            episodes=cfg.episodes,
            seed=cfg.seed,
            num_envs=cfg.num_envs,
            reward_mode=reward_mode,
        ),
    )
    return {
        "success_rate": result.success_rate,
        "success_ci95": list(result.success_ci95),
        "mean_return": result.mean_return,
        "mean_length": result.mean_length,
    }


def read_curve(metrics_file: str | Path) -> list[dict[str, Any]]:
    """The evaluation rows (those with ``success_rate``) of a run's metrics.jsonl."""
    import json

    lines = Path(metrics_file).read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [r for r in rows if "success_rate" in r]


def plot_curves(metrics_file: str | Path, out_file: str | Path, title: str = "") -> Path:
    """Success, return (and entropy if logged) against env steps for one run -> PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from robodistill.bench.plots import save_figure

    rows = read_curve(metrics_file)
    keys = [k for k in CURVE_KEYS if any(k in r for r in rows)]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        points = [(r["step"], r[key]) for r in rows if key in r]
        ax.plot(*zip(*points, strict=True), marker="o")
        ax.set_xlabel("environment steps")
        ax.set_ylabel(key)
        ax.grid(True, alpha=0.3)
    fig.suptitle(title or Path(metrics_file).parent.name)
    fig.tight_layout()
    return save_figure(fig, out_file)
