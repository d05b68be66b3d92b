"""The policy interface every method implements, and the one loader that serves them all.

A :class:`Policy` holds weights and is stateless; a :class:`Rollout` holds the per-episode
state (observation history, action queue, RTI/SDP buffers) for a batch of ``B`` envs and is
owned by the caller: one per vectorized env, per server client, per thread. This split avoids
lerobot's shared-queue pitfalls (lerobot issues 1116, 4327) while keeping lerobot's
``PreTrainedPolicy`` semantics on the rollout object:

* ``select_action(obs) -> (B, Da)``: returns the next action from the action queue and
  re-plans (calls ``predict_action_chunk``) when the queue is empty, i.e. every Ta steps.
* ``predict_action_chunk(obs) -> (B, Tp, Da)``: a fresh chunk from the current observation
  history (it first pushes ``obs`` into the history, so it works on a fresh rollout).
* ``reset(env_mask=None)``: forget the episode state of all envs, or of those in the mask.

Observations are dicts keyed by lerobot feature names (see :mod:`robodistill.features`)
with a leading batch axis: ``observation.state`` (B, Ds) float32,
``observation.environment_state`` (B, De) float32, ``observation.images.top`` (B, H, W, 3)
uint8. Symbols as in Chi et al. (2023): To = ``n_obs_steps``, Ta = ``n_action_steps``,
Tp = ``horizon``, Da = action dimension.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Observation = dict[str, np.ndarray]


@dataclass(frozen=True)
class PolicyInfo:
    """What a caller must know about a policy to drive it."""

    task: str
    """Task name the policy was made for (``reach``, ``push``, ...)."""
    obs_mode: str
    """Observation mode of the env it expects (``state`` or ``image``)."""
    action_dim: int
    n_obs_steps: int = 1
    """To: observations the policy conditions on."""
    horizon: int = 1
    """Tp: length of a predicted chunk."""
    n_action_steps: int = 1
    """Ta: actions executed from each chunk before re-planning."""
    embodiment: str | None = None
    """Embodiment for multi-embodiment tasks (``nav``), else None."""


class Rollout(ABC):
    """Per-episode state of a policy for ``num_envs`` envs; see the module docstring."""

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs

    @abstractmethod
    def select_action(self, obs: Observation) -> np.ndarray:
        """Next action for each env, (B, Da) float32."""

    @abstractmethod
    def predict_action_chunk(self, obs: Observation) -> np.ndarray:
        """A full predicted chunk for each env, (B, Tp, Da) float32."""

    @abstractmethod
    def reset(self, env_mask: np.ndarray | None = None) -> None:
        """Clear episode state for every env, or only where ``env_mask`` (B,) is True."""


class StatelessRollout(Rollout):
    """Rollout of a policy that acts on the current observation only (no history, no queue),
    such as the MLP students of RL refinement: ``act(obs) -> (B, Da)``."""

    def __init__(self, act: Callable[[Observation], np.ndarray], num_envs: int) -> None:
        super().__init__(num_envs)
        self.act = act

    def select_action(self, obs: Observation) -> np.ndarray:
        return self.act(obs)

    def predict_action_chunk(self, obs: Observation) -> np.ndarray:
        return self.act(obs)[:, None, :]  # (B, 1, Da): a chunk of one action

    def reset(self, env_mask: np.ndarray | None = None) -> None:
        """Nothing to forget."""


class Policy(ABC):
    """Weights plus the sampler that turns them into actions; holds no episode state."""

    info: PolicyInfo

    @abstractmethod
    def new_rollout(self, num_envs: int = 1, seed: int | None = None) -> Rollout:
        """Fresh per-episode state for a batch of ``num_envs`` envs.

        ``seed`` seeds the rollout's own randomness (sampling noise, expert decisions), so a
        seeded evaluation is reproducible; None keeps the policy's default.
        """

    def for_embodiment(self, embodiment: str) -> Policy:
        """This policy driving ``embodiment`` (multi-embodiment tasks); by default itself.

        Policies conditioned on the body they drive (the COMPASS generalist) return a copy
        bound to it; ones made for a single body may refuse another one with a ValueError.
        """
        return self


def load_policy(
    source: str | Path,
    task: str | None = None,
    *,
    embodiment: str | None = None,
    obs_mode: str = "state",
    seed: int = 0,
    **sampler_options,
) -> Policy:
    """Load any robodistill policy: ``"expert"`` (the task's scripted expert) or a checkpoint dir.

    ``sampler_options`` (e.g. ``num_inference_steps``) are passed to the method's loader.
    """
    if str(source) == "expert":
        if task is None:
            raise ValueError("--policy expert needs --task: the expert is task-specific")
        from robodistill.experts import make_expert

        return make_expert(task, embodiment=embodiment, seed=seed)
    from robodistill.checkpoint import load_checkpoint_policy

    policy = load_checkpoint_policy(Path(source), task=task, **sampler_options)
    return policy if embodiment is None else policy.for_embodiment(embodiment)
