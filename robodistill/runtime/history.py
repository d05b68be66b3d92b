"""Observation history for chunk inference away from the control loop (threads, servers).

A policy with To = ``n_obs_steps`` > 1 conditions on the last To observations, kept in its
rollout. When chunks are predicted only every few steps (async inference, a policy server),
the rollout must still see every observation, in order, or its history has gaps (the failure
of lerobot's policy server with diffusion policies, which only receives the observations it
plans on). So the caller keeps the last To observations in an :class:`ObservationHistory`
and, at each inference, :func:`predict_from_history` pushes all of them into the rollout
(``observe``) before predicting from the newest: the rollout's history is then exactly the
last To observations, also on the first call of an episode (fewer are repeated, as the
rollout does for a fresh episode).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from robodistill.policy import Observation, Rollout
from robodistill.runtime.rtc import ActionPrefix, PrefixPredictor


class ObservationHistory:
    """The last ``capacity`` observations (dicts of (1, ...) arrays) in preallocated slots."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"history capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._slots: list[Observation] = []
        self.count = 0
        """Observations pushed since the last clear."""

    def clear(self) -> None:
        self.count = 0

    def push(self, obs: Observation) -> None:
        """Copy ``obs`` into the next slot (no allocation once the slots exist)."""
        if not self._slots:
            self._slots = [
                {k: np.empty_like(v) for k, v in obs.items()} for _ in range(self.capacity)
            ]
        slot = self._slots[self.count % self.capacity]
        for key, value in obs.items():
            np.copyto(slot[key], value)
        self.count += 1

    def last(self, n: int) -> list[Observation]:
        """Copies of the last ``min(n, count)`` observations, oldest first."""
        n = min(n, self.count, self.capacity)
        first = self.count - n
        return [
            {k: v.copy() for k, v in self._slots[i % self.capacity].items()}
            for i in range(first, self.count)
        ]


def observer(rollout: Rollout, n_obs_steps: int) -> Callable[[Observation], None] | None:
    """How to push an observation into ``rollout``'s history without planning.

    None when the policy needs no history (To = 1). Rollouts with a history define
    ``observe(obs)`` (as :class:`~robodistill.diffusion.policy.DiffusionRollout` does).
    """
    observe = getattr(rollout, "observe", None)
    if observe is not None:
        return observe
    if n_obs_steps == 1:
        return None
    raise ValueError(
        f"{type(rollout).__name__} conditions on {n_obs_steps} observations but has no "
        "observe(obs) method to receive the observations between chunks; add one"
    )


def predict_from_history(
    rollout: Rollout,
    observe: Callable[[Observation], None] | None,
    observations: Sequence[Observation],
    prefix: ActionPrefix | None = None,
    with_prefix: PrefixPredictor | None = None,
) -> np.ndarray:
    """Push ``observations[:-1]`` into the rollout, then predict a chunk (B, Tp, Da) from the
    last one, guided by ``prefix`` through ``with_prefix`` when both are given."""
    if not observations:
        raise ValueError("no observation to predict from")
    if observe is not None:
        for obs in observations[:-1]:
            observe(obs)
    if prefix is not None and with_prefix is not None:
        return with_prefix(observations[-1], prefix)
    return rollout.predict_action_chunk(observations[-1])
