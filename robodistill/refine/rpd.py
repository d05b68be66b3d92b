"""Refined Policy Distillation (RPD): Jülg et al., "Refined Policy Distillation: From VLA
Generalists to RL Experts" (2025).

A compact Gaussian MLP student π_θ(a|s) = N(μ_θ(s), σ²) is trained with PPO on the task's
reward (dense or sparse) while the teacher is queried on the states the student visits, and a
behaviour-cloning term pulls the student's mean towards the teacher's action:

    L(θ) = L_PPO(θ) + λ(t) · E_{s ∼ π_θ} [ ‖μ_θ(s) − a_teacher(s)‖² ]

with L_PPO SB3's clipped surrogate + value + entropy loss, and λ(t) = λ held constant (the
authors' code, λ = 1) or annealed to 0 with a cosine, λ(t) = λ · ½(1 + cos(π t/T)) over the
budget of T env steps. The expectation runs over the minibatches of PPO's update: μ_θ(s) is
recomputed from the live policy in the update pass, with gradients (:class:`TeacherBCLoss`);
using means stored during the rollout would make the term a constant that silently does
nothing (a known bug in a public port; ``tests/test_rpd.py`` checks for it).

Teacher actions are computed once per env step during the rollout, on the student's state,
and stored in the rollout buffer (:class:`robodistill.refine.ppo_aux.AuxRolloutBuffer`): one
teacher chunk inference per env step (e.g. DDIM-K: K U-Net calls), independent of PPO's
epochs. With λ = 0 the teacher is never queried and the run is PPO from scratch (the baseline).

    robodistill refine rpd --teacher runs/pick_place_teacher --task pick_place \\
        --reward sparse --out runs/pick_rpd
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from robodistill.checkpoint import TrainingState
from robodistill.envs import get_spec
from robodistill.envs.spec import REWARD_MODES
from robodistill.features import ACTION, ENV_STATE, STATE
from robodistill.policy import Policy
from robodistill.refine.curves import CurveConfig, evaluate_student, plot_curves
from robodistill.refine.envs import check_reward_mode, make_vec_env, split_flat, state_dims
from robodistill.refine.gaussian import GaussianStudentPolicy, policy_kwargs, policy_mean
from robodistill.refine.ppo_aux import AuxRolloutBufferSamples, PPOWithAuxLosses
from robodistill.refine.runs import (
    capture_loop_state,
    finished_summary,
    fresh_progress,
    open_run_log,
    restore_loop_state,
    resume_point,
    write_summary,
)
from robodistill.refine.teacher import TeacherQuery, load_teacher, observation_stats

TEACHER_ACTION = "teacher_action"
BC_SCHEDULES = ("constant", "cosine")


@dataclass
class PPOConfig:
    """SB3 PPO hyper-parameters and the student network."""

    num_envs: int = 8
    n_steps: int = 256
    """Env steps per env per rollout; a rollout holds num_envs * n_steps transitions."""
    batch_size: int = 256
    n_epochs: int = 10
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    activation: str = "tanh"
    log_std_init: float = -1.0
    """Initial log σ of the Gaussian (σ ≈ 0.37 in the [-1, 1] action box)."""
    normalize_reward: bool = True
    """Scale rewards by a running std of the discounted return (SB3 VecNormalize)."""


@dataclass
class RPDConfig:
    """An RPD run; recipes in ``policies/rpd/`` override these fields."""

    task: str = "push"
    reward_mode: str = "dense"
    """``dense`` (the task's named reward terms) or ``sparse`` (1 on success)."""
    total_steps: int = 200_000
    """Environment steps of the run (the budget T)."""
    bc_weight: float = 1.0
    """λ; 0 turns RPD into PPO from scratch (the teacher is then not queried)."""
    bc_schedule: str = "constant"
    """``constant`` (λ throughout, the authors' default) or ``cosine`` (λ → 0 over T)."""
    teacher_options: dict[str, Any] = field(
        default_factory=lambda: {"scheduler": "ddim", "num_inference_steps": 4}
    )
    """Sampler options for loading the teacher (ignored for ``expert``)."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    eval: CurveConfig = field(default_factory=CurveConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.reward_mode not in REWARD_MODES:
            raise ValueError(
                f"task {self.task!r} has no reward mode {self.reward_mode!r}; choose "
                f"reward_mode (--reward) from {list(REWARD_MODES)}"
            )
        if self.bc_schedule not in BC_SCHEDULES:
            raise ValueError(
                f"unknown bc_schedule {self.bc_schedule!r}; choose from {list(BC_SCHEDULES)}"
            )
        if self.bc_weight < 0 or self.total_steps <= 0:
            raise ValueError("bc_weight must be >= 0 and total_steps > 0")


@dataclass
class TeacherBCLoss:
    """λ(t) · mean_batch ‖μ_θ(s) − a_teacher(s)‖², with μ_θ from the update pass."""

    weight: float
    schedule: str = "constant"
    name: str = "bc_loss"

    def lam(self, progress: float) -> float:
        """λ(t) at ``progress`` = t / T in [0, 1]."""
        if self.schedule == "cosine":
            return self.weight * 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.weight

    def __call__(
        self, policy: torch.nn.Module, batch: AuxRolloutBufferSamples, progress: float
    ) -> torch.Tensor:
        mean = policy_mean(policy, batch.observations)  # (B, Da), carries gradients
        target = batch.targets[TEACHER_ACTION]  # (B, Da), stored during the rollout
        return self.lam(progress) * ((mean - target) ** 2).sum(dim=-1).mean()


class TeacherLabels(BaseCallback):
    """After each env step: the teacher's action at the state just acted on, into the buffer."""

    def __init__(self, query: TeacherQuery, dims: dict[str, int]) -> None:
        super().__init__()
        self.query = query
        self.dims = dims
        self.seconds = 0.0
        """Wall time spent in teacher inference."""

    def _on_step(self) -> bool:
        start = time.perf_counter()
        obs = self.model._last_obs  # (E, D): the states of this step's actions
        action = np.clip(self.query.act(split_flat(obs, self.dims)), -1.0, 1.0)  # (E, Da)
        self.model.rollout_buffer.set_target(TEACHER_ACTION, action)
        self.query.reset(self.locals["dones"])  # those envs continue from a reset state
        self.seconds += time.perf_counter() - start
        return True


class RPD(PPOWithAuxLosses):
    """PPO + :class:`TeacherBCLoss`, teacher labels collected by :class:`TeacherLabels`."""

    def __init__(
        self,
        env,
        teacher: Policy | None,
        config: RPDConfig,
        stats: dict[str, Any],
        dims: dict[str, int],
    ) -> None:
        ppo = config.ppo
        use_teacher = config.bc_weight > 0
        if use_teacher and teacher is None:
            raise ValueError("bc_weight > 0 needs a teacher")
        super().__init__(
            "MlpPolicy",
            env,
            aux_losses=[TeacherBCLoss(config.bc_weight, config.bc_schedule)] if use_teacher else [],
            target_dims={TEACHER_ACTION: get_spec(config.task).action_dim},
            budget=config.total_steps,
            learning_rate=ppo.learning_rate,
            n_steps=ppo.n_steps,
            batch_size=ppo.batch_size,
            n_epochs=ppo.n_epochs,
            gamma=ppo.gamma,
            gae_lambda=ppo.gae_lambda,
            clip_range=ppo.clip_range,
            ent_coef=ppo.ent_coef,
            vf_coef=ppo.vf_coef,
            max_grad_norm=ppo.max_grad_norm,
            policy_kwargs=policy_kwargs(ppo.net_arch, ppo.log_std_init, stats, ppo.activation),
            seed=config.seed,
            device="cpu",
            verbose=0,
        )
        self.labels = (
            TeacherLabels(TeacherQuery(teacher, env.num_envs, seed=config.seed), dims)
            if use_teacher
            else None
        )

    def learn(self, total_timesteps: int, callback=None, **kwargs):  # noqa: ANN201 (SB3's API)
        callbacks = [c for c in (self.labels, callback) if c is not None]
        return super().learn(total_timesteps, callback=callbacks, **kwargs)


def train_rpd(config: RPDConfig, teacher: str | Path, out: str | Path) -> dict[str, Any]:
    """Train an RPD student (or PPO from scratch when ``bc_weight == 0``) into ``out``.

    ``teacher`` is a checkpoint folder or ``expert``; with ``bc_weight == 0`` only its
    observation statistics are used. Returns the run summary (also ``<out>/summary.json``);
    a finished run with the same config is returned as is, without training, and a killed
    one resumes from its last checkpoint (see :mod:`robodistill.refine.runs`).
    """
    from stable_baselines3.common.vec_env import VecNormalize

    from robodistill.training.seeding import seed_everything

    out, teacher_id = Path(out), str(teacher)
    check_reward_mode(config.task, config.reward_mode)
    done = finished_summary(out, config, teacher_id)
    if done is not None:
        return done
    # --- plumbing: teacher, envs, logs -------------------------------------------------------
    teacher_policy = load_teacher(teacher, config.task, config.teacher_options)
    stats = observation_stats(teacher_policy, config.task, teacher, seed=config.seed)
    dims = state_dims(config.task)
    seed_everything(config.seed)
    resume = resume_point(out, config, teacher_id)
    venv = make_vec_env(config.task, config.ppo.num_envs, config.reward_mode, config.seed)
    if config.ppo.normalize_reward:
        venv = VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=config.ppo.gamma)
    rollout_steps = config.ppo.num_envs * config.ppo.n_steps
    iterations = math.ceil(config.total_steps / rollout_steps)
    # --- the algorithm -----------------------------------------------------------------------
    model = RPD(venv, teacher_policy, config, stats, dims)
    student = GaussianStudentPolicy(model.policy, config.task)
    if resume:
        progress = _restore(resume, model, venv)
    else:
        progress = fresh_progress(config.eval.every, _evaluate(student, config, 0, 0.0))
    curve = progress["curve"]
    kind = "RPD" if config.bc_weight > 0 else "PPO from scratch"
    headline = f"{kind} on {config.task} ({config.reward_mode} reward), teacher {teacher_id}"
    start_row = None if resume else _scalars(curve[0])
    log = open_run_log(out, progress, iterations * rollout_steps, headline, start_row)
    start = time.perf_counter() - progress["wall_s"]
    for iteration in range(progress["steps"] // rollout_steps, iterations):
        model.learn(rollout_steps, reset_num_timesteps=model.num_timesteps == 0)
        progress["steps"] = steps = model.num_timesteps
        row = dict(model.last_update, train_return=_train_return(model))
        evaluate = steps >= progress["next_eval"] or iteration == iterations - 1
        if evaluate:
            progress["wall_s"] = time.perf_counter() - start
            curve.append(_evaluate(student, config, steps, progress["wall_s"]))
            row |= _scalars(curve[-1])
            progress["next_eval"] += config.eval.every
            progress["teacher_s"] = model.labels.seconds if model.labels else 0.0
            progress["ret_rms"] = _reward_stats(venv)
        log.metrics(steps, **row)
        log.advance(rollout_steps)
        if evaluate:  # after the metrics line, so a resumed curve has it
            state = capture_loop_state(model.policy, model.policy.optimizer, progress)
            _save(out, model, config, stats, dims, teacher_id, steps, state)
    steps, wall, teacher_seconds = progress["steps"], progress["wall_s"], progress["teacher_s"]
    log.info(f"done: {steps} env steps in {wall:.0f} s ({teacher_seconds:.0f} s in the teacher)")
    log.close()
    venv.close()
    plot_curves(out / "metrics.jsonl", out / "curves.png", title=f"{kind}: {out.name}")
    return write_summary(
        out,
        config,
        teacher_id,
        run_dir=str(out),
        method="rpd" if config.bc_weight > 0 else "ppo",
        env_steps=steps,
        wall_time_s=wall,
        teacher_time_s=teacher_seconds,
        final=curve[-1],
        curve=curve,
    )


def _restore(resume: TrainingState, model: RPD, venv) -> dict[str, Any]:  # noqa: ANN001
    """Continue a killed run: weights, Adam moments, RNG, step count and reward statistics."""
    progress = restore_loop_state(resume, model.policy, model.policy.optimizer)
    model.num_timesteps = progress["steps"]
    if model.labels:
        model.labels.seconds = progress["teacher_s"]
    if progress.get("ret_rms"):
        venv.ret_rms.mean, venv.ret_rms.var, venv.ret_rms.count = progress["ret_rms"]
    return progress


def _reward_stats(venv) -> list[float] | None:  # noqa: ANN001
    """VecNormalize's running return statistics (mean, var, count), None without it."""
    rms = getattr(venv, "ret_rms", None)
    return None if rms is None else [float(rms.mean), float(rms.var), float(rms.count)]


def _evaluate(student: Policy, config: RPDConfig, steps: int, wall: float) -> dict[str, Any]:
    result = evaluate_student(student, config.task, config.eval, config.reward_mode)
    return {"step": steps, "wall_time_s": wall, **result}


def _scalars(point: dict[str, Any]) -> dict[str, float]:
    return {k: point[k] for k in ("success_rate", "mean_return", "mean_length")}


def _train_return(model: PPOWithAuxLosses) -> float:
    """Mean undiscounted return of the last training episodes (SB3's Monitor), NaN if none."""
    returns = [info["r"] for info in model.ep_info_buffer]
    return float(np.mean(returns)) if returns else float("nan")


def _save(
    out: Path,
    model: RPD,
    config: RPDConfig,
    stats: dict[str, Any],
    dims: dict[str, int],
    teacher: str,
    steps: int,
    state: TrainingState,
) -> None:
    from robodistill.training.checkpointing import save_run_checkpoint

    spec = get_spec(config.task)
    save_run_checkpoint(
        out,
        steps,
        keep=1,
        method="rpd",
        config=config,
        state_dict={k: v.clone() for k, v in model.policy.state_dict().items()},  # unalias
        task=config.task,
        obs_mode="state",
        feature_shapes={
            STATE: (dims[STATE],),
            ENV_STATE: (dims[ENV_STATE],),
            ACTION: (spec.action_dim,),
        },
        normalization=stats,
        dataset={"teacher": teacher, "env_id": spec.env_id, "reward_mode": config.reward_mode},
        training_state=state,
    )


def with_overrides(config: RPDConfig, **overrides: Any) -> RPDConfig:
    """``config`` with the non-None top-level ``overrides`` applied (validated again)."""
    values = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(config, **values) if values else config
