"""The networks of COMPASS (Liu et al., NVIDIA 2025), scaled to a CPU.

Shapes: B batch, To observation frames, F frame size (``observation.state`` then
``observation.environment_state``), L latent size, Da action size, D descriptor size.

* :class:`BaseModel` — stage 1, the paper's "world model + policy" foundation: a history
  encoder ``z_t = E(o_{t-To+1..t})``, a latent dynamics head ``ẑ_{t+1} = f(z_t, a_t)`` with an
  observation decoder ``ô = g(z)``, and a mobility policy head ``a = π(z)`` trained by BC.
* :class:`SpecialistModel` — stage 2: the frozen base plus a residual Gaussian actor,
  ``a ~ N(π(z) + r(z, ō), σ²)``, executed as ``clip(a, -1, 1)``, where ``ō`` is the current
  frame normalized with the base's statistics (not the decoder output ``ô``); ``r`` starts as
  a copy of ``π`` (with a zero-initialized input branch for ``ō``) whose last layer is zeroed,
  and ``σ = init_std``, so the specialist starts exactly at the base.
* :class:`GeneralistModel` — stage 3: the frozen base encoder and a Gaussian head conditioned on
  the scaled embodiment descriptor, ``N(μ(z, d/s), σ(z, d/s)²)``.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from robodistill.compass.config import BaseConfig


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with Mish between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.Mish())
    return nn.Sequential(*layers)


class ObsNormalizer(nn.Module):
    """``(o - mean) / std`` with the demos' statistics, kept in the state dict."""

    def __init__(self, frame_dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(frame_dim))
        self.register_buffer("std", torch.ones(frame_dim))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor, min_std: float) -> None:
        """Use the demos' mean and std, the std floored at ``min_std`` (see BaseConfig)."""
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(min_std))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return (frames - self.mean) / self.std


class BaseModel(nn.Module):
    """History encoder + latent dynamics + observation decoder + BC policy head."""

    def __init__(self, frame_dim: int, action_dim: int, cfg: BaseConfig) -> None:
        super().__init__()
        h, latent = cfg.hidden_dim, cfg.latent_dim
        self.n_obs_steps = cfg.n_obs_steps
        self.normalizer = ObsNormalizer(frame_dim)
        # LayerNorm without affine keeps z at unit scale, so the latent prediction cannot
        # shrink to zero; the observation decoder keeps z informative.
        self.encoder = nn.Sequential(
            mlp([cfg.n_obs_steps * frame_dim, h, h, latent]),
            nn.LayerNorm(latent, elementwise_affine=False),
        )
        self.dynamics = mlp([latent + action_dim, h, h, latent])
        self.decoder = mlp([latent, h, frame_dim])
        self.head = mlp([latent, h, h, action_dim])

    def encode(self, history: torch.Tensor) -> torch.Tensor:
        """Raw frames (B, To, F) -> latent (B, L)."""
        return self.encoder(self.normalizer(history).flatten(1))  # (B, To*F) -> (B, L)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        """The base's action (B, Da), before clipping."""
        return self.head(self.encode(history))


def base_loss(
    model: BaseModel, frames: torch.Tensor, action: torch.Tensor, dynamics_weight: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """Stage-1 loss on windows of To+1 frames ending at t+1 and the action a_t.

    L = ||π(z_t) − a_t||² + w (||f(z_t, a_t) − sg(z_{t+1})||² + ||g(f(z_t, a_t)) − o_{t+1}||²
    + ||g(z_t) − o_t||²), with z_t = E(o_{t-To+1..t}), observations normalized, sg = stop-grad.
    """
    z = model.encode(frames[:, :-1])  # (B, L)
    with torch.no_grad():
        z_next = model.encode(frames[:, 1:])  # (B, L), the target
    bc = F.mse_loss(model.head(z), action)
    z_pred = model.dynamics(torch.cat([z, action], dim=-1))  # (B, L)
    latent = F.mse_loss(z_pred, z_next)
    norm = model.normalizer(frames[:, -2:])  # (B, 2, F): o_t, o_{t+1}
    recon = F.mse_loss(model.decoder(z_pred), norm[:, 1]) + F.mse_loss(model.decoder(z), norm[:, 0])
    loss = bc + dynamics_weight * (latent + recon)
    return loss, {
        "loss": loss.item(),
        "bc": bc.item(),
        "latent": latent.item(),
        "obs": recon.item(),
    }


def frozen(module: nn.Module) -> nn.Module:
    """``module`` with gradients off and in eval mode (a fixed part of a later stage)."""
    module.requires_grad_(False)
    return module.eval()


class SpecialistModel(nn.Module):
    """Frozen base + residual actor r(z, ō) + log σ.

    The latent z of a base trained on one embodiment's demos need not carry what another body
    needs (a car's steering setpoint, its speed), so the residual also reads the current frame
    ō = (o_t − m) / s, normalized with the base's statistics. Its first layer is the base head's
    first layer on z plus a separate linear branch on ō:

        h₁ = W_z z + b + W_o ō,   r(z, ō) = layers₂..(h₁),

    with W_z, b and the hidden layers copied from π, W_o = 0 and the last layer zeroed, so
    r ≡ 0 at the start (the specialist starts exactly at the base) and W_o only grows once PPO
    finds a use for it. The critic reads the same [z, ō] (:meth:`features`).
    """

    def __init__(self, base: BaseModel, init_std: float) -> None:
        super().__init__()
        self.base = frozen(base)
        self.residual = copy.deepcopy(base.head).requires_grad_(True)
        last = self.residual[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        frame_dim = base.normalizer.mean.numel()
        self.obs_branch = nn.Linear(frame_dim, base.head[0].out_features, bias=False)
        nn.init.zeros_(self.obs_branch.weight)
        action_dim = last.out_features
        self.log_std = nn.Parameter(torch.full((action_dim,), math.log(init_std)))

    @property
    def feature_dim(self) -> int:
        """Size of [z, ō], the input of the critic."""
        return self.base.head[0].in_features + self.obs_branch.in_features

    def train(self, mode: bool = True) -> SpecialistModel:
        super().train(mode)
        self.base.eval()  # the base never leaves eval mode
        return self

    def inputs(self, history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The latent z (B, L) and the normalized current frame ō (B, F), both without grad."""
        with torch.no_grad():
            return self.base.encode(history), self.base.normalizer(history[:, -1])

    def features(self, history: torch.Tensor) -> torch.Tensor:
        """[z, ō] (B, L + F): what the critic reads."""
        return torch.cat(self.inputs(history), dim=-1)

    def residual_action(self, z: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """r(z, ō) (B, Da): the first layer on z plus the ō branch, then the copied layers."""
        hidden = self.residual[0](z) + self.obs_branch(obs)  # (B, H)
        return self.residual[1:](hidden)

    def distribution(self, history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean π(z) + r(z, ō) and log σ of the specialist's Gaussian, each (B, Da)."""
        z, obs = self.inputs(history)
        with torch.no_grad():
            base_action = self.base.head(z)
        mean = base_action + self.residual_action(z, obs)
        return mean, self.log_std.expand_as(mean)


class GeneralistModel(nn.Module):
    """Frozen base encoder + Gaussian head on [z, d / scale]."""

    def __init__(
        self,
        base: BaseModel,
        descriptor_dim: int,
        hidden_dim: int,
        log_std_range: tuple[float, float],
    ) -> None:
        super().__init__()
        self.normalizer = frozen(copy.deepcopy(base.normalizer))
        self.encoder = frozen(copy.deepcopy(base.encoder))
        latent = base.head[0].in_features
        action_dim = base.head[-1].out_features
        self.head = mlp([latent + descriptor_dim, hidden_dim, hidden_dim, 2 * action_dim])
        self.register_buffer("descriptor_scale", torch.ones(descriptor_dim))
        self.log_std_range = log_std_range

    def train(self, mode: bool = True) -> GeneralistModel:
        super().train(mode)
        self.encoder.eval()
        return self

    def distribution(
        self, history: torch.Tensor, descriptor: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log σ (B, Da) for frames (B, To, F) and raw descriptors (B, D)."""
        with torch.no_grad():
            z = self.encoder(self.normalizer(history).flatten(1))  # (B, L)
        d = descriptor / self.descriptor_scale  # (B, D)
        mean, log_std = self.head(torch.cat([z, d], dim=-1)).chunk(2, dim=-1)
        return mean, log_std.clamp(*self.log_std_range)


def gaussian_kl(
    mean_t: torch.Tensor, log_std_t: torch.Tensor, mean_s: torch.Tensor, log_std_s: torch.Tensor
) -> torch.Tensor:
    """KL(teacher ‖ student) of diagonal Gaussians, summed over the action dims: (B,).

    KL = Σ_d [log σ_s − log σ_t + (σ_t² + (μ_t − μ_s)²) / (2 σ_s²) − 1/2].
    """
    var_t, var_s = (2 * log_std_t).exp(), (2 * log_std_s).exp()
    kl = log_std_s - log_std_t + (var_t + (mean_t - mean_s) ** 2) / (2 * var_s) - 0.5
    return kl.sum(-1)
