"""Stable-baselines3 PPO with named auxiliary loss terms computed in the update pass.

SB3 has no hook for extra loss terms (its maintainers point users at overriding ``train()``),
so :class:`PPOWithAuxLosses` is the one place that does: its ``train()`` is SB3 2.9's PPO update
unchanged except for one line, ``loss += Σ_i term_i(policy, minibatch, progress)``, and a log
entry per term. The terms are separate, composable objects (:class:`AuxLoss`); each receives
the live policy and the minibatch, so whatever it computes from the policy carries gradients
from this update pass, never values stored during the rollout.

Per-step targets a term needs (e.g. the teacher's action) live in :class:`AuxRolloutBuffer`
beside SB3's own rollout arrays and are shuffled into the same minibatches.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import NamedTuple, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.utils import explained_variance
from torch import nn


class AuxRolloutBufferSamples(NamedTuple):
    """SB3's ``RolloutBufferSamples`` plus the auxiliary targets of the same transitions."""

    observations: torch.Tensor
    actions: torch.Tensor
    old_values: torch.Tensor
    old_log_prob: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    targets: dict[str, torch.Tensor]
    """name -> (batch, dim) per-step targets written with :meth:`AuxRolloutBuffer.set_target`."""


class AuxRolloutBuffer(RolloutBuffer):
    """SB3's ``RolloutBuffer`` with extra per-step float arrays ``targets[name]`` (T, E, dim)."""

    def __init__(self, *args, target_dims: dict[str, int], **kwargs) -> None:
        self.target_dims = dict(target_dims)
        self.targets: dict[str, np.ndarray] = {}
        super().__init__(*args, **kwargs)

    def reset(self) -> None:
        super().reset()
        self.targets = {
            name: np.zeros((self.buffer_size, self.n_envs, dim), dtype=np.float32)
            for name, dim in self.target_dims.items()
        }

    def set_target(self, name: str, values: np.ndarray) -> None:
        """Store ``values`` (E, dim) for the step about to be added (index ``self.pos``)."""
        self.targets[name][self.pos] = values

    def get(self, batch_size: int | None = None) -> Generator[AuxRolloutBufferSamples, None, None]:
        if not self.generator_ready:  # flatten (T, E, d) -> (T*E, d) like SB3's own arrays
            self.targets = {k: self.swap_and_flatten(v) for k, v in self.targets.items()}
        yield from super().get(batch_size)

    def _get_samples(self, batch_inds: np.ndarray, env=None) -> AuxRolloutBufferSamples:
        base = super()._get_samples(batch_inds, env)
        targets = {k: self.to_torch(v[batch_inds]) for k, v in self.targets.items()}
        return AuxRolloutBufferSamples(*base, targets=targets)


class AuxLoss(Protocol):
    """One named loss term added to PPO's loss in every minibatch update."""

    name: str

    def __call__(
        self, policy: nn.Module, batch: AuxRolloutBufferSamples, progress: float
    ) -> torch.Tensor:
        """The weighted scalar term; ``progress`` runs from 0 (start) to 1 (end of budget)."""


class PPOWithAuxLosses(PPO):
    """SB3 PPO whose update adds ``aux_losses``; see the module docstring.

    ``budget`` (total env steps of the run) defines ``progress = num_timesteps / budget`` for
    schedules inside the terms, independent of how many ``learn()`` calls the run makes.
    """

    def __init__(
        self,
        *args,
        aux_losses: Sequence[AuxLoss] = (),
        target_dims: dict[str, int] | None = None,
        budget: int = 1,
        **kwargs,
    ) -> None:
        self.aux_losses = list(aux_losses)
        self.budget = max(int(budget), 1)
        self.last_update: dict[str, float] = {}
        """Mean of each loss over the last update's minibatches (for run logs)."""
        kwargs.setdefault("rollout_buffer_class", AuxRolloutBuffer)
        kwargs.setdefault("rollout_buffer_kwargs", {"target_dims": target_dims or {}})
        super().__init__(*args, **kwargs)

    def train(self) -> None:
        """SB3 2.9's ``PPO.train`` plus the auxiliary terms (marked ``# aux``)."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = self.clip_range(self._current_progress_remaining)
        if self.clip_range_vf is not None:
            clip_range_vf = self.clip_range_vf(self._current_progress_remaining)
        progress = min(self.num_timesteps / self.budget, 1.0)  # aux
        logs: dict[str, list[float]] = {"entropy_loss": [], "pg_loss": [], "value_loss": []}
        logs |= {term.name: [] for term in self.aux_losses}  # aux
        clip_fractions, continue_training = [], True
        for _epoch in range(self.n_epochs):
            approx_kl_divs = []
            for batch in self.rollout_buffer.get(self.batch_size):
                actions = batch.actions
                if isinstance(self.action_space, spaces.Discrete):
                    actions = batch.actions.long().flatten()
                values, log_prob, entropy = self.policy.evaluate_actions(
                    batch.observations, actions
                )
                values = values.flatten()
                advantages = batch.advantages
                if self.normalize_advantage and len(advantages) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
                ratio = torch.exp(log_prob - batch.old_log_prob)
                policy_loss_1 = advantages * ratio
                policy_loss_2 = advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
                policy_loss = -torch.min(policy_loss_1, policy_loss_2).mean()
                clip_fractions.append(((ratio - 1).abs() > clip_range).float().mean().item())
                if self.clip_range_vf is None:
                    values_pred = values
                else:
                    values_pred = batch.old_values + torch.clamp(
                        values - batch.old_values, -clip_range_vf, clip_range_vf
                    )
                value_loss = F.mse_loss(batch.returns, values_pred)
                entropy_loss = -torch.mean(-log_prob) if entropy is None else -entropy.mean()
                loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
                for term in self.aux_losses:  # aux: computed here, with gradients
                    term_loss = term(self.policy, batch, progress)
                    logs[term.name].append(term_loss.item())
                    loss = loss + term_loss
                logs["pg_loss"].append(policy_loss.item())
                logs["value_loss"].append(value_loss.item())
                logs["entropy_loss"].append(entropy_loss.item())
                with torch.no_grad():
                    log_ratio = log_prob - batch.old_log_prob
                    approx_kl_div = torch.mean((torch.exp(log_ratio) - 1) - log_ratio).item()
                    approx_kl_divs.append(approx_kl_div)
                if self.target_kl is not None and approx_kl_div > 1.5 * self.target_kl:
                    continue_training = False
                    break
                self.policy.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()
            self._n_updates += 1
            if not continue_training:
                break
        explained_var = explained_variance(
            self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten()
        )
        self.last_update = {k: float(np.mean(v)) for k, v in logs.items() if v}
        self.last_update |= {
            "loss": loss.item(),
            "approx_kl": float(np.mean(approx_kl_divs)),
            "clip_fraction": float(np.mean(clip_fractions)),
            "explained_variance": float(explained_var),
            "std": torch.exp(self.policy.log_std).mean().item(),
        }
        for key, value in self.last_update.items():
            self.logger.record(f"train/{key}", value)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
