"""VLA-OPD: "Bridging Offline SFT and Online RL for Vision-Language-Action Models via On-Policy
Distillation" (2026), on binned-action students (:mod:`robodistill.refine.binned`).

Phase 1, SFT: behaviour cloning on demos, L_SFT = E_{(s,a)∼D} [ −Σ_d log π_θ(bin(a_d) | s) ].
Phase 2, on-policy distillation: the student samples its own trajectories s ∼ π_θ (the
environment's reward is never used) and at every visited state the teacher gives a dense
per-step target, its per-dimension action distribution π_T(· | s) over the same K bins. The
paper's objective is the reverse KL, mode-seeking and bounded,

    L_rKL(θ) = E_{s∼π_θ} Σ_d Σ_k π_θ(k|s) [ log π_θ(k|s) − log π_T(k|s) ],

contrasted with the forward KL, E_s Σ_d Σ_k π_T(k|s) [log π_T(k|s) − log π_θ(k|s)]
(mode-covering: the student spreads over every bin the teacher touches, its entropy grows),
and hard cross-entropy to the teacher's most likely bin, E_s Σ_d −log π_θ(argmax_k π_T | s)
(one-hot targets: entropy collapses). All three are exact sums over the K bins;
``objective`` picks one (:data:`OBJECTIVES`).

The teacher's distribution at a state: N = ``teacher_samples`` independent draws of the
teacher at that state (N chunk samples with fresh noise from the same observation history,
action index To−1 of each), histogrammed per dimension into the K bins with add-α smoothing
(:func:`robodistill.refine.binned.histogram`). One on-policy env step costs N teacher chunk
inferences.

    robodistill refine opd --teacher runs/push_teacher --task push --objective reverse_kl \\
        --out runs/push_opd
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robodistill.checkpoint import TrainingState
from robodistill.configs import ConfigError
from robodistill.envs import get_spec
from robodistill.features import ACTION, ENV_STATE, STATE
from robodistill.refine.binned import (
    BinnedMLP,
    BinnedStudentPolicy,
    bin_centers,
    build_binned_model,
    entropy,
    histogram,
    to_bins,
)
from robodistill.refine.curves import CurveConfig, evaluate_student, plot_curves
from robodistill.refine.envs import STATE_KEYS, make_vec_env, split_flat, state_dims
from robodistill.refine.runs import (
    capture_loop_state,
    finished_summary,
    fresh_progress,
    open_run_log,
    restore_loop_state,
    resume_point,
    write_summary,
)
from robodistill.refine.teacher import TeacherQuery, load_teacher


def reverse_kl(logits: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Σ_d KL(π_θ ‖ π_T) per state (B,): logits (B, Da, K), teacher probs (B, Da, K)."""
    log_p = logits.log_softmax(-1)
    return (log_p.exp() * (log_p - teacher.log())).sum(-1).sum(-1)


def forward_kl(logits: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Σ_d KL(π_T ‖ π_θ) per state (B,)."""
    return (teacher * (teacher.log() - logits.log_softmax(-1))).sum(-1).sum(-1)


def hard_ce(logits: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Σ_d −log π_θ(argmax_k π_T | s) per state (B,)."""
    target = teacher.argmax(-1, keepdim=True)  # (B, Da, 1)
    return -logits.log_softmax(-1).gather(-1, target).squeeze(-1).sum(-1)


OBJECTIVES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "reverse_kl": reverse_kl,
    "forward_kl": forward_kl,
    "hard_ce": hard_ce,
}
"""objective name -> per-state loss (B,) of (student logits, teacher probabilities)."""


@dataclass
class SFTConfig:
    """Phase 1: behaviour cloning on demos of one or more tasks."""

    datasets: dict[str, str] = field(default_factory=lambda: {"push": "data/push"})
    """task -> LeRobotDataset root. The first task is refined; the others (same observation
    and action sizes) are only SFT'd, to measure forgetting."""
    steps: int = 4000
    batch_size: int = 256
    lr: float = 1e-3


@dataclass
class OPDConfig:
    """A VLA-OPD run; recipes in ``policies/opd/`` override these fields."""

    task: str = "push"
    objective: str = "reverse_kl"
    """``reverse_kl`` (the paper's), ``forward_kl`` or ``hard_ce``."""
    bins: int = 32
    """K bins per action dimension."""
    teacher_samples: int = 16
    """N teacher draws per visited state for its histogram."""
    smoothing: float = 0.1
    """α of the add-α smoothing of the teacher histogram."""
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    total_steps: int = 20_000
    """On-policy environment steps of phase 2."""
    num_envs: int = 8
    n_steps: int = 64
    """Env steps per env per iteration (a batch holds num_envs * n_steps states)."""
    epochs: int = 4
    batch_size: int = 256
    lr: float = 3e-4
    teacher_options: dict[str, Any] = field(
        default_factory=lambda: {"scheduler": "ddim", "num_inference_steps": 4}
    )
    sft: SFTConfig = field(default_factory=SFTConfig)
    eval: CurveConfig = field(default_factory=CurveConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"unknown objective {self.objective!r}; choose --objective from {list(OBJECTIVES)}"
            )
        if self.bins < 2 or self.teacher_samples < 1 or self.smoothing <= 0:
            raise ValueError("bins must be >= 2, teacher_samples >= 1 and smoothing > 0")
        if not self.sft.datasets:
            raise ValueError("sft.datasets must name at least the refined task's demos")


def load_config(recipe: str | None, task: str, **overrides: Any) -> OPDConfig:
    """The recipe (default ``opd/<task>``) with non-None CLI overrides, checked against ``task``."""
    from robodistill.recipes import load_recipe, require_method

    name = recipe or f"opd/{task}"
    require_method(name, "opd", "opd/push")
    config = load_recipe(name, OPDConfig)
    if config.task != task:
        raise ConfigError(
            f"recipe {name!r} is for task {config.task!r}, not {task!r}: pass --task "
            f"{config.task} or a recipe for {task!r}"
        )
    values = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(config, **values) if values else config


def sft_identity(config: OPDConfig) -> dict[str, Any]:
    """The config fields that define the SFT student (the objective and phase 2 do not)."""
    return {
        "task": config.task,
        "bins": config.bins,
        "hidden": list(config.hidden),
        "sft": dataclasses.asdict(config.sft),
        "seed": config.seed,
    }


# --- phase 1: SFT ------------------------------------------------------------------------------
def sft_student(config: OPDConfig, out: Path, quiet: bool = False) -> Path:
    """Behaviour-clone the binned student on ``config.sft.datasets`` into checkpoint ``out``.

    Idempotent: an SFT checkpoint in ``out`` made with the same :func:`sft_identity` is reused.
    """
    from robodistill.checkpoint import read_checkpoint

    out = Path(out)
    if (out / "config.json").is_file():
        meta = read_checkpoint(out).meta
        if meta["dataset"].get("sft_identity") == sft_identity(config):
            return out
        raise ConfigError(f"{out} holds an SFT student of another config: pass a new --out")
    torch.manual_seed(config.seed)
    data, stats = _load_demos(config)
    model = build_binned_model(dataclasses.asdict(config), _feature_shapes(config.task), stats)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.sft.lr)
    generator = torch.Generator().manual_seed(config.seed)
    start = time.perf_counter()
    for step in range(config.sft.steps):
        rows = torch.randint(0, len(data["task"]), (config.sft.batch_size,), generator=generator)
        logits = model(data["obs"][rows], data["task"][rows])  # (B, Da, K)
        target = to_bins(data["action"][rows], config.bins)  # (B, Da)
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target) * target.shape[1]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if not quiet and (step + 1) % max(config.sft.steps // 5, 1) == 0:
            print(f"SFT step {step + 1}/{config.sft.steps}: loss {loss.item():.3f}", flush=True)
    _save(out, model, config, stats, {"sft_identity": sft_identity(config)})
    (out / "sft_seconds.txt").write_text(f"{time.perf_counter() - start:.1f}\n")
    return out


def _load_demos(config: OPDConfig) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """All frames of every SFT dataset: flat obs (N, D), actions (N, Da), task index (N,)."""
    from robodistill.data.loading import WindowDataset, open_dataset, open_dataset_meta

    spec = get_spec(config.task)
    tasks = list(config.sft.datasets)
    if tasks[0] != config.task:
        raise ConfigError(
            f"sft.datasets must list the refined task {config.task!r} first, got {tasks}"
        )
    dims = state_dims(config.task)
    obs, actions, index, stats = [], [], [], {}
    for i, (task, root) in enumerate(config.sft.datasets.items()):
        size = sum(state_dims(task).values())
        if size != sum(dims.values()) or get_spec(task).action_dim != spec.action_dim:
            raise ConfigError(
                f"sft.datasets: task {task!r} has a {size}-D flat state and "
                f"{get_spec(task).action_dim}-D actions, task {config.task!r} has "
                f"{sum(dims.values())}-D and {spec.action_dim}-D: a multi-task student needs "
                f"equal sizes; drop {task!r}"
            )
        meta = open_dataset_meta(root)
        stats[task] = {k: {s: list(meta.stats[k][s]) for s in ("min", "max")} for k in STATE_KEYS}
        keys = [*STATE_KEYS, ACTION]
        windows = WindowDataset(open_dataset(root, {k: [0.0] for k in keys}), keys)
        obs.append(torch.cat([windows.columns[k] for k in STATE_KEYS], dim=1).float())
        actions.append(windows.columns[ACTION].float())
        index.append(torch.full((len(windows),), i))
    data = {"obs": torch.cat(obs), "action": torch.cat(actions), "task": torch.cat(index)}
    return data, stats


def _feature_shapes(task: str) -> dict[str, tuple[int]]:
    dims = state_dims(task)
    return {
        STATE: (dims[STATE],),
        ENV_STATE: (dims[ENV_STATE],),
        ACTION: (get_spec(task).action_dim,),
    }


def _save(
    out: Path,
    model: BinnedMLP,
    config: OPDConfig,
    stats: dict[str, Any],
    dataset: dict[str, Any],
    step: int | None = None,
    state: TrainingState | None = None,
) -> None:
    from robodistill.checkpoint import save_checkpoint
    from robodistill.training.checkpointing import save_run_checkpoint

    checkpoint = {
        "method": "opd",
        "config": config,
        "state_dict": model.state_dict(),
        "task": config.task,
        "obs_mode": "state",
        "feature_shapes": _feature_shapes(config.task),
        "normalization": stats,
        "dataset": dataset,
    }
    if step is None:
        save_checkpoint(out, **checkpoint)
    else:
        save_run_checkpoint(out, step, keep=1, training_state=state, **checkpoint)


# --- phase 2: on-policy distillation -----------------------------------------------------------
def train_opd(
    config: OPDConfig,
    teacher: str | Path,
    out: str | Path,
    sft_checkpoint: str | Path | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """SFT (or reuse ``sft_checkpoint``), then on-policy distillation into ``out``.

    Returns the run summary (also ``<out>/summary.json``): success and entropy after SFT and
    at the end, the curve, and success on the other SFT tasks before and after (forgetting).
    A finished run with the same config is returned without training; a killed one resumes
    from its last checkpoint (see :mod:`robodistill.refine.runs`).
    """
    from robodistill.checkpoint import read_checkpoint

    out, teacher_id = Path(out), str(teacher)
    done = finished_summary(out, config, teacher_id)
    if done is not None:
        return done
    # --- plumbing: teacher, SFT start, envs, logs -----------------------------------------------
    teacher_policy = load_teacher(teacher, config.task, config.teacher_options)
    sft_dir = Path(sft_checkpoint) if sft_checkpoint else out / "sft"
    sft_student(config, sft_dir, quiet=quiet)
    ckpt = read_checkpoint(sft_dir)
    if ckpt.meta["dataset"].get("sft_identity") != sft_identity(config):
        raise ConfigError(f"{sft_dir} was SFT'd with another config: pass a matching one")
    stats = ckpt.meta["normalization"]
    model = build_binned_model(ckpt.config, ckpt.meta["feature_shapes"], stats)
    model.load_state_dict(ckpt.state_dict)
    torch.manual_seed(config.seed)
    resume = resume_point(out, config, teacher_id)
    dims = state_dims(config.task)
    venv = make_vec_env(config.task, config.num_envs, "dense", config.seed)
    query = TeacherQuery(teacher_policy, config.num_envs, config.teacher_samples, config.seed)
    objective = OBJECTIVES[config.objective]
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    rollout_steps = config.num_envs * config.n_steps
    iterations = math.ceil(config.total_steps / rollout_steps)
    others = _other_tasks(model, config)
    # --- the algorithm ---------------------------------------------------------------------------
    if resume:
        progress = restore_loop_state(resume, model, optimizer)
    else:  # the SFT start: its success, entropy and the other tasks' success (forgetting)
        sft_point = _evaluate(model, config, 0, 0.0)
        progress = fresh_progress(config.eval.every, sft_point)
        progress |= {"sft": sft_point, "other_tasks_after_sft": others()}
    curve = progress["curve"]
    headline = f"OPD ({config.objective}) on {config.task}, teacher {teacher_id}, SFT {sft_dir}"
    start_row = None if resume else _scalars(curve[0])
    log = open_run_log(out, progress, iterations * rollout_steps, headline, start_row)
    obs = venv.reset()  # (E, D)
    start = time.perf_counter() - progress["wall_s"]
    for iteration in range(progress["steps"] // rollout_steps, iterations):
        batch, obs, info = _collect(model, venv, query, obs, dims, config)
        progress["steps"] = steps = progress["steps"] + rollout_steps
        progress["teacher_s"] += info.pop("teacher_s")
        row = {**_update(model, optimizer, objective, batch, config), **info}
        evaluate = steps >= progress["next_eval"] or iteration == iterations - 1
        if evaluate:
            progress["wall_s"] = time.perf_counter() - start
            curve.append(_evaluate(model, config, steps, progress["wall_s"]))
            row |= _scalars(curve[-1])
            progress["next_eval"] += config.eval.every
        log.metrics(steps, **row)
        log.advance(rollout_steps)
        if evaluate:  # after the metrics line, so a resumed curve has it
            state = capture_loop_state(model, optimizer, progress)
            dataset = {"teacher": teacher_id, "sft": str(sft_dir)}
            _save(out, model, config, stats, dataset, steps, state)
    steps, wall, teacher_seconds = progress["steps"], progress["wall_s"], progress["teacher_s"]
    log.info(f"done: {steps} env steps in {wall:.0f} s ({teacher_seconds:.0f} s in the teacher)")
    log.close()
    venv.close()
    plot_curves(out / "metrics.jsonl", out / "curves.png", title=f"OPD {config.objective}")
    return write_summary(
        out,
        config,
        teacher_id,
        run_dir=str(out),
        method="opd",
        sft_checkpoint=str(sft_dir),
        env_steps=steps,
        wall_time_s=wall,
        teacher_time_s=teacher_seconds,
        sft=progress["sft"],
        final=curve[-1],
        curve=curve,
        other_tasks={"after_sft": progress["other_tasks_after_sft"], "after_opd": others()},
    )


def _collect(
    model: BinnedMLP,
    venv,
    query: TeacherQuery,
    obs: np.ndarray,
    dims: dict[str, int],
    config: OPDConfig,
) -> tuple[dict[str, torch.Tensor], np.ndarray, dict[str, float]]:
    """n_steps of the student's own sampled actions in every env, with teacher targets."""
    centers = bin_centers(config.bins)
    task = torch.zeros(config.num_envs, dtype=torch.long)  # the refined task is index 0
    states, targets, entropies, successes = [], [], [], []
    teacher_seconds = 0.0
    for _ in range(config.n_steps):
        t0 = time.perf_counter()
        samples = query.sample(split_flat(obs, dims))  # (E, N, Da)
        teacher_seconds += time.perf_counter() - t0
        flat = torch.as_tensor(obs)
        with torch.no_grad():
            logits = model(flat, task)  # (E, Da, K)
            bins = torch.distributions.Categorical(logits=logits).sample()  # (E, Da)
        states.append(flat)
        targets.append(histogram(torch.as_tensor(samples), config.bins, config.smoothing))
        entropies.append(entropy(logits))
        obs, _, dones, infos = venv.step(centers[bins].numpy())
        query.reset(dones)
        successes += [float(i.get("is_success", False)) for i, d in zip(infos, dones) if d]
    batch = {"obs": torch.cat(states), "teacher": torch.cat(targets)}  # (T*E, D), (T*E, Da, K)
    info = {
        "rollout_entropy": torch.cat(entropies).mean().item(),
        "train_success": float(np.mean(successes)) if successes else float("nan"),
        "teacher_s": teacher_seconds,
    }
    return batch, obs, info


def _update(
    model: BinnedMLP,
    optimizer: torch.optim.Optimizer,
    objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batch: dict[str, torch.Tensor],
    config: OPDConfig,
) -> dict[str, float]:
    """``epochs`` passes of minibatch gradient descent on the objective over the batch."""
    size = len(batch["obs"])
    losses = []
    for _ in range(config.epochs):
        for rows in torch.randperm(size).split(config.batch_size):
            task = torch.zeros(len(rows), dtype=torch.long)
            logits = model(batch["obs"][rows], task)  # (B, Da, K), with gradients
            loss = objective(logits, batch["teacher"][rows]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return {"loss": float(np.mean(losses))}


def _evaluate(model: BinnedMLP, config: OPDConfig, steps: int, wall: float) -> dict[str, Any]:
    """Greedy success on the refined task, and the student's entropy on those eval states."""
    tasks = list(config.sft.datasets)
    policy = _EntropyProbe(BinnedStudentPolicy(model, tasks, config.task))
    result = evaluate_student(policy, config.task, config.eval)
    return {"step": steps, "wall_time_s": wall, **result, "entropy": policy.mean_entropy()}


def _other_tasks(model: BinnedMLP, config: OPDConfig) -> Callable[[], dict[str, Any]]:
    """A function that evaluates the student on its other SFT tasks (forgetting check)."""
    tasks = list(config.sft.datasets)

    def evaluate_others() -> dict[str, Any]:
        return {
            task: evaluate_student(BinnedStudentPolicy(model, tasks, task), task, config.eval)
            for task in tasks[1:]
        }

    return evaluate_others


class _EntropyProbe(BinnedStudentPolicy):
    """A student that also records its per-state entropy while it is evaluated."""

    def __init__(self, inner: BinnedStudentPolicy) -> None:
        self.__dict__.update(inner.__dict__)
        self._entropies: list[torch.Tensor] = []

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        from robodistill.refine.envs import join_features

        flat = torch.as_tensor(join_features(obs))
        logits = self.model(flat, torch.full((flat.shape[0],), self.task_index))
        self._entropies.append(entropy(logits))
        return self.centers[logits.argmax(-1)].numpy()

    def mean_entropy(self) -> float:
        return torch.cat(self._entropies).mean().item() if self._entropies else float("nan")


def _scalars(point: dict[str, Any]) -> dict[str, float]:
    return {k: point[k] for k in ("success_rate", "mean_return", "mean_length", "entropy")}
