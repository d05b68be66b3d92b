"""COMPASS stage 2: residual PPO per embodiment, and the PPO-from-scratch baseline.

With the base frozen, PPO (stable-baselines3) learns a residual Gaussian actor on the base's
latent z and the normalized current frame ō:  a = clip(π(z) + r(z, ō) + σ ε, −1, 1),
ε ~ N(0, I).  As in the authors' code, r starts as a copy of the base head π with its last layer
zeroed, so the mean action starts at the base's (ō enters through a zero-initialized branch,
see :class:`~robodistill.compass.model.SpecialistModel`); σ starts at ``init_std`` (0.1 in the
authors' code, 1.0 in the nav recipe: 0.1 explores too little for the car); the critic V(z, ō)
is a fresh MLP on the same inputs. PPO's loss is unchanged (clipped surrogate + value
loss): only the policy is custom, in one small class.
The env reports the dense nav reward and runs within the embodiment's own kinematic limits.

The baseline is SB3's ``MlpPolicy`` on the same frame histories, same budget and PPO settings,
with SB3's default initial std (1.0) and no pretrained parts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticPolicy

from robodistill.compass.config import CompassConfig
from robodistill.compass.envs import history_env_factory, make_history_vec_env
from robodistill.compass.model import BaseModel, SpecialistModel, mlp


class ResidualActorCritic(ActorCriticPolicy):
    """SB3 actor-critic whose actor is a :class:`SpecialistModel` (frozen base + residual).

    SB3 builds its default heads (with an empty ``net_arch``); they are then replaced by the
    specialist and a critic on [z, ō], and the optimizer is rebuilt over the trainable parameters
    (residual, log σ, critic).
    """

    def __init__(
        self,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Box,
        lr_schedule: Callable[[float], float],
        specialist: SpecialistModel,
        critic_hidden: int = 256,
        **kwargs: Any,
    ) -> None:
        super().__init__(observation_space, action_space, lr_schedule, net_arch=[], **kwargs)
        del self.action_net, self.value_net, self.log_std  # SB3's defaults, unused
        self.specialist = specialist
        self.critic = mlp([specialist.feature_dim, critic_hidden, critic_hidden, 1])
        self.action_dist = DiagGaussianDistribution(action_space.shape[0])
        trainable = [p for p in self.parameters() if p.requires_grad]
        self.optimizer = self.optimizer_class(trainable, lr=lr_schedule(1), **self.optimizer_kwargs)

    def _distribution(self, obs: torch.Tensor) -> DiagGaussianDistribution:
        mean, log_std = self.specialist.distribution(obs.float())  # (B, Da) each
        return self.action_dist.proba_distribution(mean, log_std)

    def forward(self, obs: torch.Tensor, deterministic: bool = False):
        dist = self._distribution(obs)
        actions = dist.get_actions(deterministic=deterministic)
        return actions, self.predict_values(obs), dist.log_prob(actions)

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor):
        dist = self._distribution(obs)
        return self.predict_values(obs), dist.log_prob(actions), dist.entropy()

    def get_distribution(self, obs: torch.Tensor) -> DiagGaussianDistribution:
        return self._distribution(obs)

    def predict_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self.specialist.features(obs.float()))  # (B, 1)


class LearningCurve(BaseCallback):
    """After every PPO rollout, appends the episodes that ended in it to a JSON-lines file:
    ``{"step", "episodes", "success_rate", "mean_return", "mean_length"}`` (training episodes,
    i.e. with the policy's exploration noise)."""

    def __init__(self, path: Path, progress: Callable[[dict | None], None] | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.progress = progress
        self.returns: np.ndarray | None = None
        self.lengths: np.ndarray | None = None
        self.finished: list[tuple[bool, float, int]] = []

    def _on_training_start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")
        n = self.training_env.num_envs
        self.returns, self.lengths = np.zeros(n), np.zeros(n, dtype=int)

    def _on_step(self) -> bool:
        self.returns += self.locals["rewards"]
        self.lengths += 1
        for i in np.flatnonzero(self.locals["dones"]):
            success = bool(self.locals["infos"][i].get("is_success", False))
            self.finished.append((success, float(self.returns[i]), int(self.lengths[i])))
            self.returns[i], self.lengths[i] = 0.0, 0
        return True

    def _on_rollout_end(self) -> None:
        row = None
        if self.finished:
            success, returns, lengths = zip(*self.finished, strict=True)
            row = {
                "step": int(self.num_timesteps),
                "episodes": len(success),
                "success_rate": float(np.mean(success)),
                "mean_return": float(np.mean(returns)),
                "mean_length": float(np.mean(lengths)),
            }
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")
        self.finished = []
        if self.progress is not None:
            self.progress(row)


def _ppo(cfg: CompassConfig, venv, policy: Any, policy_kwargs: dict, seed: int) -> PPO:
    r = cfg.residual
    return PPO(
        policy,
        venv,
        learning_rate=r.lr,
        n_steps=r.n_steps,
        batch_size=r.batch_size,
        n_epochs=r.n_epochs,
        gamma=r.gamma,
        gae_lambda=r.gae_lambda,
        clip_range=r.clip_range,
        ent_coef=r.ent_coef,
        max_grad_norm=r.max_grad_norm,
        policy_kwargs=policy_kwargs,
        seed=seed,
        device="cpu",
        verbose=0,
    )


def train_specialist(
    cfg: CompassConfig,
    base: BaseModel,
    embodiment: str,
    seed: int,
    curve_path: Path,
    progress: Callable[[dict | None], None] | None = None,
) -> SpecialistModel:
    """Residual PPO for ``embodiment`` over a frozen copy of ``base``; returns the specialist."""
    import copy

    r = cfg.residual
    specialist = SpecialistModel(copy.deepcopy(base), r.init_std)
    venv = make_history_vec_env(
        cfg.task, embodiment, r.num_envs, cfg.base.n_obs_steps, seed, r.reward_mode
    )
    kwargs = {"specialist": specialist, "critic_hidden": r.critic_hidden}
    model = _ppo(cfg, venv, ResidualActorCritic, kwargs, seed)
    model.learn(r.total_steps, callback=LearningCurve(curve_path, progress))
    venv.close()
    return specialist.eval()


def train_scratch(
    cfg: CompassConfig,
    embodiment: str,
    seed: int,
    curve_path: Path,
    progress: Callable[[dict | None], None] | None = None,
) -> Callable[[np.ndarray], np.ndarray]:
    """PPO from scratch with the specialist's budget; returns its deterministic actor."""
    r = cfg.residual
    venv = make_history_vec_env(
        cfg.task, embodiment, r.num_envs, cfg.base.n_obs_steps, seed, r.reward_mode
    )
    hidden = [cfg.base.hidden_dim] * 2
    kwargs = {"net_arch": {"pi": hidden, "vf": hidden}}
    model = _ppo(cfg, venv, "MlpPolicy", kwargs, seed)
    model.learn(r.total_steps, callback=LearningCurve(curve_path, progress))
    venv.close()

    def act(history: np.ndarray) -> np.ndarray:
        actions, _ = model.predict(history, deterministic=True)
        return np.clip(actions, -1.0, 1.0).astype(np.float32)

    return act


def run_episodes(
    act: Callable[[np.ndarray], np.ndarray],
    cfg: CompassConfig,
    embodiment: str,
    episodes: int,
    num_envs: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Drive ``episodes`` seeded episodes (episode i: seed + i) with ``act(histories)``.

    ``act`` maps frame histories (B, To, F) of the running envs to actions (B, Da); callers
    wrap it to record what they need (the distillation stage records teacher labels).
    Returns one ``{"seed", "success", "length", "return"}`` per episode.
    """
    make = history_env_factory(cfg.task, embodiment, cfg.base.n_obs_steps)
    envs = [make() for _ in range(max(1, min(num_envs, episodes)))]
    seeds = iter(range(seed, seed + episodes))
    current = [next(seeds) for _ in envs]
    obs = [env.reset(seed=s)[0] for env, s in zip(envs, current, strict=True)]
    running = list(range(len(envs)))
    stats = {i: [0.0, 0] for i in running}
    results = []
    while running:
        actions = act(np.stack([obs[i] for i in running]))  # (B, Da)
        for i, action in zip(list(running), actions, strict=True):
            obs[i], reward, terminated, truncated, info = envs[i].step(action)
            stats[i][0] += reward
            stats[i][1] += 1
            if terminated or truncated:
                results.append(
                    {
                        "seed": current[i],
                        "success": bool(info["is_success"]),
                        "length": stats[i][1],
                        "return": float(stats[i][0]),
                    }
                )
                nxt = next(seeds, None)
                if nxt is None:
                    running.remove(i)
                else:
                    current[i], stats[i] = nxt, [0.0, 0]
                    obs[i] = envs[i].reset(seed=nxt)[0]
    for env in envs:
        env.close()
    return sorted(results, key=lambda r: r["seed"])
