"""RTI-DP: the Real-Time Iteration scheme for Diffusion Policy (Duan, Yin & Kragic, 2025).

Real-time iteration in nonlinear MPC warm-starts each solve with the previous solution shifted
by one control interval. RTI-DP does the same with the reverse diffusion process of a trained
Diffusion Policy, without retraining: at a new observation o_t the previous clean chunk a⁰_{t-1}
(B, Tp, Da), shifted by the one executed action with the last action repeated,

    ā = [a⁰_{t-1}[1:], a⁰_{t-1}[-1]],

is the initial guess, and only the last K′ ≪ K steps of the teacher's schedule (timesteps
t_{K′} > ... > t_1) run, conditioned on o_t:

    a^{t_{K′}} = ā                                          (guess used as-is), or
    a^{t_{K′}} = √ᾱ_{t_{K′}} ā + √(1 − ᾱ_{t_{K′}}) ε       (re-noised: a sample of q(a^{K′} | ā)),
    a^{t_{i-1}} = step(ε_θ(a^{t_i}, t_i, o_t), t_i, a^{t_i})   for i = K′ .. 1.

The first call of an episode runs the full schedule. One action (index To-1 of the chunk) is
executed per call (Ta = 1), so every control step costs K′ evaluations of ε_θ. The public code
of the paper uses the guess as-is; its text describes re-noising. Both are here
(``rti_renoise``); :data:`DEFAULT_RENOISE` is the one that measured better (numbers in its
docstring, from ``robodistill bench methods``).

Discrete action channels (``spec.action.discrete``, e.g. the pick_place gripper, > 0 closes):
a warm start would carry a half-way gripper value into the next solve and smear an open/close
decision over several steps, so the paper

* snaps the gripper channel of the guess to ±``rti_discrete_snap`` (normalized units) by its
  sign (the *clip* variant, for existing checkpoints): a small magnitude keeps the decision's
  sign as a weak prior that a few denoising steps can overturn;
* or trains the teacher with the gripper channel scaled down (the *scale* variant: the gripper is
  normalized to ±1/f instead of ±1, see ``widen_discrete_stats``), so the guess has a small
  magnitude by construction (snapping it to ±1/f is then a no-op for a matching snap value);
* and binarizes the output gripper command to ±1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from robodistill.diffusion.policy import DiffusionPolicy, DiffusionRollout, normalize_obs
from robodistill.features import ACTION
from robodistill.policy import Observation, Policy

DEFAULT_RENOISE = True
"""Whether the shifted guess is re-noised to step K′ by default: yes, as the paper's text says.

Measured with ``robodistill bench methods`` (100 episodes per variant, DDPM-100 schedule,
docs/results/2026-11-24/methods/), re-noised vs as-is: push K′ = 1, 2, 4: 9/41/74% vs
10/33/64%; pick_place: 87/64/71% vs 29/87/79%. Re-noising is better on average on both tasks
and at push's best K′; as-is only wins on pick_place at K′ = 2 and 4. (A demo-sized teacher
over 20 episodes had pointed the other way: K′ = 4 65% as-is vs 50% re-noised.)"""
DEFAULT_DISCRETE_SNAP = 0.1
"""Magnitude (normalized units) the discrete channels of the guess are snapped to (clip variant)."""


class RTIPolicy(Policy):
    """A teacher (:class:`DiffusionPolicy`) whose rollouts warm-start from the previous chunk.

    ``rti_steps`` is K′, the number of final steps of the teacher's schedule run per control
    step (1 <= K′ <= N, the schedule's length); ``discrete`` lists the binary action channels
    (default: the task spec's ``action.discrete``).
    """

    def __init__(
        self,
        teacher: DiffusionPolicy,
        rti_steps: int,
        *,
        renoise: bool = DEFAULT_RENOISE,
        discrete: Sequence[int] | None = None,
        discrete_snap: float = DEFAULT_DISCRETE_SNAP,
    ) -> None:
        scheduler = getattr(teacher.sampler, "scheduler", None)
        if scheduler is None or not all(
            hasattr(scheduler, attr) for attr in ("add_noise", "alphas_cumprod", "timesteps")
        ):
            raise ValueError(
                f"RTI needs a DDPM/DDIM scheduler that can re-noise a guess to step k, but this "
                f"policy samples with {type(teacher.sampler).__name__}; load the checkpoint with "
                "--scheduler ddpm or ddim, or use a diffusion teacher checkpoint"
            )
        schedule = scheduler.timesteps  # (N,) descending
        if not 1 <= rti_steps <= len(schedule):
            raise ValueError(
                f"rti_steps (K') must be in [1, {len(schedule)}] (the length of the "
                f"{type(scheduler).__name__} schedule), got {rti_steps}; pass a smaller "
                "--rti-steps or a longer schedule with --steps"
            )
        if int(schedule[len(schedule) - rti_steps]) >= scheduler.config.num_train_timesteps:
            raise ValueError(
                f"the scheduler cannot re-noise to step {int(schedule[-rti_steps])}: it is beyond "
                f"its {scheduler.config.num_train_timesteps} training steps"
            )
        if not 0 < discrete_snap <= 1:
            raise ValueError(f"rti_discrete_snap must be in (0, 1], got {discrete_snap}")
        if discrete is None:
            from robodistill.envs import get_spec

            discrete = get_spec(teacher.info.task).action.discrete
        bad = [d for d in discrete if not 0 <= d < teacher.info.action_dim]
        if bad:
            raise ValueError(f"discrete action channels {bad} out of range")
        self.teacher = teacher
        self.scheduler = scheduler
        self.timesteps = schedule[len(schedule) - rti_steps :]  # t_{K′} > ... > t_1
        self.rti_steps = rti_steps
        self.renoise = renoise
        self.discrete = list(discrete)
        self.discrete_snap = discrete_snap
        self.info = dataclasses.replace(teacher.info, n_action_steps=1)

    def new_rollout(self, num_envs: int = 1, seed: int | None = None) -> RTIRollout:
        """Fresh warm-start state (no guess yet) for ``num_envs`` envs."""
        return RTIRollout(self, num_envs, 0 if seed is None else seed)

    def initial_guess(self, previous: torch.Tensor) -> torch.Tensor:
        """Previous normalized chunk (n, Tp, Da) shifted by one step; discrete channels snapped."""
        guess = torch.cat([previous[:, 1:], previous[:, -1:]], dim=1)  # (n, Tp, Da)
        if self.discrete:
            d = self.discrete
            guess[..., d] = torch.where(guess[..., d] > 0, self.discrete_snap, -self.discrete_snap)
        return guess

    def refine(
        self,
        previous: torch.Tensor,
        global_cond: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Run the last K′ steps from the guess: (n, Tp, Da) normalized -> (n, Tp, Da)."""
        sample = self.initial_guess(previous)
        n = sample.shape[0]
        if self.renoise:  # a^{t_K′} ~ q(· | ā) = N(√ᾱ ā, (1 − ᾱ) I)
            noise = torch.randn(sample.shape, generator=generator)
            sample = self.scheduler.add_noise(sample, noise, self.timesteps[:1].expand(n))
        unet = self.teacher.model.unet
        for t in self.timesteps:
            eps = unet(sample, t.expand(n), global_cond)
            sample = self.scheduler.step(eps, t, sample, generator=generator).prev_sample
        return sample

    def to_actions(self, chunk: torch.Tensor) -> torch.Tensor:
        """Normalized (..., Da) -> data units, with discrete channels binarized to ±1."""
        actions = self.teacher.normalizer.unnormalize(ACTION, chunk)
        if self.discrete:
            d = self.discrete
            actions[..., d] = torch.where(actions[..., d] > 0, 1.0, -1.0)
        return actions


class RTIRollout(DiffusionRollout):
    """Observation history (from :class:`DiffusionRollout`) plus each env's previous chunk.

    Every call of :meth:`select_action` or :meth:`predict_action_chunk` is one RTI iteration
    and assumes the caller executes one action before the next call.
    """

    def __init__(self, policy: RTIPolicy, num_envs: int, seed: int = 0) -> None:
        super().__init__(policy.teacher, num_envs, seed)
        self.rti = policy
        cfg = policy.teacher.config
        self._previous = torch.zeros(num_envs, cfg.horizon, policy.info.action_dim)  # normalized
        self._warm = torch.zeros(num_envs, dtype=torch.bool)  # has a previous chunk

    def _iterate(self, obs: Observation) -> torch.Tensor:
        """One RTI iteration for every env: the new normalized chunk (B, Tp, Da)."""
        self.observe(obs)
        teacher = self.policy
        cond = teacher.model.encoder(normalize_obs(teacher.normalizer, self._history))  # (B, C)
        chunk = torch.empty_like(self._previous)
        cold = (~self._warm).nonzero().squeeze(1)
        if len(cold):  # first call of an episode: the full schedule from noise
            noise = torch.randn((len(cold), *chunk.shape[1:]), generator=self._generator)
            chunk[cold] = teacher.sampler(teacher.model.unet, cond[cold], noise, self._generator)
        warm = self._warm.nonzero().squeeze(1)
        if len(warm):
            chunk[warm] = self.rti.refine(self._previous[warm], cond[warm], self._generator)
        self._previous.copy_(chunk)
        self._warm.fill_(True)
        return chunk

    @torch.inference_mode()
    def select_action(self, obs: Observation) -> np.ndarray:
        chunk = self._iterate(obs)
        return self.rti.to_actions(chunk[:, self._chunk_start]).numpy()  # (B, Da)

    @torch.inference_mode()
    def predict_action_chunk(self, obs: Observation) -> np.ndarray:
        return self.rti.to_actions(self._iterate(obs)).numpy()  # (B, Tp, Da)

    def reset(self, env_mask: np.ndarray | None = None) -> None:
        super().reset(env_mask)
        mask = slice(None) if env_mask is None else torch.as_tensor(np.asarray(env_mask, bool))
        self._warm[mask] = False


def widen_discrete_stats(
    stats: Mapping[str, Mapping[str, Sequence[float]]], discrete: Sequence[int], factor: float
) -> dict[str, dict[str, list[float]]]:
    """Min-max stats whose ``action`` channels ``discrete`` normalize to ±1/``factor``.

    The RTI-DP *scale* variant for a retrained teacher: min-max normalization maps [min, max] to
    [-1, 1]; widening the range about its centre by ``factor`` maps the data to
    [-1/factor, 1/factor] and unnormalization still returns data units, so the scaling travels
    inside the checkpoint's statistics and needs no other change.
    """
    if factor < 1:
        raise ValueError(f"discrete_action_scale must be >= 1, got {factor}")
    out = {k: {"min": list(v["min"]), "max": list(v["max"])} for k, v in stats.items()}
    low, high = out[ACTION]["min"], out[ACTION]["max"]
    for d in discrete:
        mid, half = (high[d] + low[d]) / 2, (high[d] - low[d]) / 2
        low[d], high[d] = mid - factor * half, mid + factor * half
    return out
