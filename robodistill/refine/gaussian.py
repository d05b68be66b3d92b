"""The RPD student: a compact Gaussian MLP actor-critic (SB3's ``ActorCriticPolicy``).

π_θ(a | s) = N(μ_θ(s), diag σ²) with a state-independent log σ; the input s is the flat state
(see :mod:`robodistill.refine.envs`) min-max normalized to [-1, 1] and clamped by
:class:`NormalizedStateExtractor` (:func:`normalize_state`), whose statistics are buffers saved
with the weights. As a robodistill :class:`~robodistill.policy.Policy` it acts with the mean
μ_θ(s), clipped to [-1, 1]; it has no episode state (To = Tp = Ta = 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from robodistill.checkpoint import Checkpoint, load_weights
from robodistill.features import ACTION
from robodistill.policy import Observation, Policy, PolicyInfo, Rollout, StatelessRollout
from robodistill.refine.envs import STATE_KEYS, join_features

try:  # SB3 is a dependency of refinement only
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
except ImportError:  # pragma: no cover
    BaseFeaturesExtractor = nn.Module  # type: ignore[misc,assignment]

Stats = Mapping[str, Mapping[str, Sequence[float]]]

INPUT_CLIP = 5.0
"""Normalized student inputs are clamped to [-INPUT_CLIP, INPUT_CLIP] (SB3's VecNormalize clips
at 10): a feature nearly constant in the teacher's data (pick_place's cube tilt, a 0.003 range)
gets a scale of ~700, and the student's own states (a tipped cube) would otherwise feed it
inputs of several hundred, saturating the tanh layers so PPO and the BC term cannot move them."""


def normalization_affine(stats: Stats, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """(mid, scale) of the flat state so that (s − mid)·scale maps the stats' range to [-1, 1]."""
    low = torch.tensor([x for k in STATE_KEYS for x in stats[k]["min"]], dtype=torch.float32)
    high = torch.tensor([x for k in STATE_KEYS for x in stats[k]["max"]], dtype=torch.float32)
    span = high - low
    return (high + low) / 2, torch.where(span > eps, 2 / span, torch.ones_like(span))


def normalize_state(obs: torch.Tensor, mid: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """(s − mid)·scale clamped to ±:data:`INPUT_CLIP`: [-1, 1] on the stats' range."""
    return ((obs - mid) * scale).clamp(-INPUT_CLIP, INPUT_CLIP)


class NormalizedStateExtractor(BaseFeaturesExtractor):
    """s (B, D) -> :func:`normalize_state` (B, D); mid and scale travel in the state dict."""

    def __init__(self, observation_space: spaces.Box, mid: list[float], scale: list[float]) -> None:
        super().__init__(observation_space, features_dim=observation_space.shape[0])
        self.register_buffer("mid", torch.tensor(mid, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return normalize_state(observations, self.mid, self.scale)


def policy_kwargs(
    net_arch: Sequence[int], log_std_init: float, stats: Stats, activation: str = "tanh"
) -> dict[str, Any]:
    """``policy_kwargs`` of SB3's PPO for the student (also used to rebuild it for eval)."""
    mid, scale = normalization_affine(stats)
    activations = {"tanh": nn.Tanh, "relu": nn.ReLU}
    if activation not in activations:
        raise ValueError(f"activation must be one of {sorted(activations)}, got {activation!r}")
    return {
        "net_arch": {"pi": list(net_arch), "vf": list(net_arch)},
        "activation_fn": activations[activation],
        "log_std_init": log_std_init,
        "features_extractor_class": NormalizedStateExtractor,
        "features_extractor_kwargs": {"mid": mid.tolist(), "scale": scale.tolist()},
    }


def policy_mean(policy: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """μ_θ(s) (B, Da) of an SB3 ``ActorCriticPolicy``, differentiable (no ``no_grad``)."""
    return policy.get_distribution(obs).distribution.mean


class GaussianStudentPolicy(Policy):
    """An SB3 actor-critic as a robodistill policy: deterministic action μ_θ(s), clipped."""

    def __init__(self, sb3_policy: nn.Module, task: str, embodiment: str | None = None) -> None:
        self.sb3_policy = sb3_policy
        self.info = PolicyInfo(
            task=task,
            obs_mode="state",
            action_dim=sb3_policy.action_space.shape[0],
            embodiment=embodiment,
        )

    def new_rollout(self, num_envs: int = 1, seed: int | None = None) -> Rollout:
        return StatelessRollout(self.act, num_envs)

    @torch.no_grad()
    def act(self, obs: Observation) -> np.ndarray:
        """(B, Da) mean actions in [-1, 1] for a batch of feature-dict observations."""
        flat = torch.as_tensor(join_features(obs))
        return policy_mean(self.sb3_policy, flat).clamp(-1.0, 1.0).numpy()


def build_sb3_policy(
    obs_dim: int, action_dim: int, kwargs: dict[str, Any]
) -> nn.Module:  # ActorCriticPolicy
    """An untrained SB3 ``ActorCriticPolicy`` for flat obs (obs_dim,) and actions in [-1, 1]."""
    from stable_baselines3.common.policies import ActorCriticPolicy

    obs_space = spaces.Box(-np.inf, np.inf, shape=(obs_dim,), dtype=np.float32)
    act_space = spaces.Box(-1.0, 1.0, shape=(action_dim,), dtype=np.float32)
    return ActorCriticPolicy(obs_space, act_space, lambda _: 0.0, **kwargs)


def load_gaussian_student(ckpt: Checkpoint, **options: Any) -> GaussianStudentPolicy:
    """The loader registered for ``rpd`` checkpoints (no sampler options apply)."""
    if options:
        raise ValueError(
            f"an RPD student takes no sampler options, got {sorted(options)}: drop them"
        )
    config = ckpt.config
    shapes = ckpt.meta["feature_shapes"]
    obs_dim = sum(shapes[k][0] for k in STATE_KEYS)
    kwargs = policy_kwargs(
        config["ppo"]["net_arch"],
        config["ppo"]["log_std_init"],
        ckpt.meta["normalization"],
        config["ppo"]["activation"],
    )
    module = build_sb3_policy(obs_dim, shapes[ACTION][0], kwargs)
    load_weights(module, ckpt)
    return GaussianStudentPolicy(module.eval(), ckpt.task, ckpt.meta.get("embodiment"))
