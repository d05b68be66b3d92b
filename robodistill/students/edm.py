"""EDM for action chunks (Karras et al., "Elucidating the Design Space of Diffusion-Based
Generative Models", NeurIPS 2022): preconditioning, the Karras σ schedule, the Heun sampler and
the denoising-score-matching loss, configured as the teacher of Consistency Policy (Prasad et
al., RSS 2024). Network and observation encoder are the Diffusion Policy teacher's
(:class:`robodistill.diffusion.policy.DiffusionModel`); only the noise model differs.

Probability-flow ODE with σ(t) = t (EDM Eq. 1): dx/dσ = (x − D(x; σ)) / σ, integrated from
x ~ N(0, σ_max² I) down to σ = 0, where D is the denoiser (the estimate of the clean chunk).

Preconditioning, with the boundary-condition scalings of consistency models (Song et al. 2023),
which Consistency Policy uses for teacher and student alike::

    D_θ(x; σ) = c_skip(σ) x + c_out(σ) F_θ(c_in(σ) x, c_noise(σ), o)
    c_skip(σ) = σ_d² / ((σ − σ_min)² + σ_d²)       c_out(σ) = (σ − σ_min) σ_d / √(σ² + σ_d²)
    c_in(σ)   = 1 / √(σ² + σ_d²)                   c_noise(σ) = 1000 · ¼ ln σ

so D_θ(x; σ_min) = x whatever F_θ computes (c_noise is EDM's ¼ ln σ scaled by 1000 for the
U-Net's sinusoidal step embedding, as in Consistency Policy's code).

Karras schedule (EDM Eq. 5): σ_i = (σ_max^{1/ρ} + i/(N−1) (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ for
i = 0..N−1, then σ_N = 0. Heun sampler (EDM Algorithm 1): d = (x − D(x; σ_i))/σ_i,
x' = x + (σ_{i+1} − σ_i) d, and unless σ_{i+1} = 0 the correction
x_{i+1} = x + (σ_{i+1} − σ_i)(d + d')/2 with d' = (x' − D(x'; σ_{i+1}))/σ_{i+1}: 2N − 1 network
evaluations for N bins.

Loss (EDM Eq. 2 with Consistency Policy's pseudo-Huber metric): ln σ ~ N(P_mean, P_std²) and

    L = E_{x0, σ, n} [ √(λ(σ) ‖D_θ(x0 + σ n; σ) − x0‖² + c²) − c ],   λ(σ) = (σ² + σ_d²) / (σ σ_d)²

i.e. the pseudo-Huber distance of iCT (Song & Dhariwal 2023, c = 0.00054 √dim) applied to the
λ-scaled error, which is the error of F_θ against its target, so every σ weighs alike.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robodistill.checkpoint import Checkpoint, CheckpointError, load_weights
from robodistill.configs import ConfigError, from_dict
from robodistill.diffusion.config import DiffusionConfig
from robodistill.diffusion.normalizer import MinMaxNormalizer
from robodistill.diffusion.policy import DiffusionModel, DiffusionPolicy
from robodistill.diffusion.sampler import NoiseModel

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""D(x; σ): noisy chunks (B, Tp, Da) and noise levels (B,) -> clean-chunk estimates (B, Tp, Da)."""


@dataclass
class EdmNoiseConfig:
    """EDM noise levels, discretization and loss (Consistency Policy's values)."""

    sigma_min: float = 0.02
    """σ_min: the lowest noise level, treated as clean (D(x; σ_min) = x)."""
    sigma_max: float = 80.0
    sigma_data: float = 0.5
    """σ_d: standard deviation of the (normalized) actions assumed by the preconditioning."""
    rho: float = 7.0
    num_bins: int = 80
    """N: points of the Karras discretization; the Heun sampler's default number of bins and
    the grid on which a consistency student is distilled."""
    p_mean: float = -1.2
    """Mean of ln σ in training."""
    p_std: float = 1.2
    """Standard deviation of ln σ in training."""
    huber_c: float | None = None
    """c of the pseudo-Huber metric; None: 0.00054 √(Tp · Da) as in iCT."""
    clip_sample: bool = True
    """Clip sampled chunks to [-1, 1] (actions are min-max normalized)."""

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(
                f"need 0 < sigma_min < sigma_max, got {self.sigma_min} and {self.sigma_max}"
            )
        if self.num_bins < 2:
            raise ValueError(f"num_bins must be >= 2, got {self.num_bins}")


@dataclass
class EdmConfig(DiffusionConfig):
    """The Diffusion Policy teacher's network and data settings with EDM's noise model."""

    noise: EdmNoiseConfig = field(default_factory=EdmNoiseConfig)  # type: ignore[assignment]


def as_column(sigma: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, 1): per-sample noise levels that broadcast over chunks (B, Tp, Da)."""
    return sigma.reshape(-1, 1, 1)


def edm_scalings(
    sigma: torch.Tensor, cfg: EdmNoiseConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(c_skip, c_out, c_in) as (B, 1, 1) and c_noise as (B,) for noise levels σ (B,)."""
    sd2 = cfg.sigma_data**2
    c_skip = sd2 / ((sigma - cfg.sigma_min) ** 2 + sd2)
    c_out = (sigma - cfg.sigma_min) * cfg.sigma_data / (sigma**2 + sd2).sqrt()
    c_in = 1 / (sigma**2 + sd2).sqrt()
    c_noise = 250 * sigma.log()
    return as_column(c_skip), as_column(c_out), as_column(c_in), c_noise


def edm_denoise(
    unet: NoiseModel,
    x: torch.Tensor,
    sigma: torch.Tensor,
    global_cond: torch.Tensor,
    cfg: EdmNoiseConfig,
) -> torch.Tensor:
    """D_θ(x; σ) = c_skip x + c_out F_θ(c_in x, c_noise, o): (B, Tp, Da), σ (B,) -> (B, Tp, Da)."""
    c_skip, c_out, c_in, c_noise = edm_scalings(sigma, cfg)
    return c_skip * x + c_out * unet(c_in * x, c_noise, global_cond)


def karras_sigmas(num: int, cfg: EdmNoiseConfig) -> torch.Tensor:
    """The Karras discretization σ_0 = σ_max > ... > σ_{num−1} = σ_min, shape (num,)."""
    if num == 1:
        return torch.tensor([cfg.sigma_max])
    ramp = torch.linspace(0, 1, num, dtype=torch.float64)
    low, high = cfg.sigma_min ** (1 / cfg.rho), cfg.sigma_max ** (1 / cfg.rho)
    return ((high + ramp * (low - high)) ** cfg.rho).float()


def heun_step(
    denoise: Denoiser,
    x: torch.Tensor,
    sigma: torch.Tensor,
    sigma_next: torch.Tensor,
    *,
    sigma_floor: float,
) -> torch.Tensor:
    """One step of EDM's Heun solver from σ (B,) to σ_next (B,); Euler where σ_next <= σ_floor.

    EDM takes an Euler last step into σ = 0. With the boundary-condition preconditioning the
    same holds at σ_min: D(x; σ_min) = x by construction, so the slope there is 0 whatever the
    data and a Heun correction would average the true slope with 0 and stop half-way (with 2
    bins the sample lands half-way between the noise and the denoised chunk). So σ_floor has no
    default: the EDM sampler and distillation pass σ_min (for a converted DDPM teacher too,
    where it is EDM's Euler last step); σ_floor = 0 is plain Heun with an Euler step into 0.
    """
    step = as_column(sigma_next - sigma)
    slope = (x - denoise(x, sigma)) / as_column(sigma)
    x_next = x + step * slope
    final = sigma_next <= sigma_floor
    if final.all():
        return x_next
    safe_next = torch.where(final, torch.ones_like(sigma_next), sigma_next)
    slope_next = (x_next - denoise(x_next, safe_next)) / as_column(safe_next)
    corrected = x + step * (slope + slope_next) / 2
    return torch.where(as_column(final), x_next, corrected)


def pseudo_huber(
    pred: torch.Tensor, target: torch.Tensor, c: float, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-sample √(w ‖pred − target‖² + c²) − c over all but the batch axis: (B, ...) -> (B,)."""
    squared = (pred - target).flatten(1).square().sum(dim=1)  # (B,)
    if weight is not None:
        squared = weight * squared
    return (squared + c**2).sqrt() - c


def huber_c(cfg: EdmNoiseConfig, chunk_shape: tuple[int, ...]) -> float:
    """The pseudo-Huber constant c: the configured one, or iCT's 0.00054 √dim."""
    return cfg.huber_c if cfg.huber_c is not None else 0.00054 * math.sqrt(math.prod(chunk_shape))


def log_normal_sigmas(batch: int, cfg: EdmNoiseConfig) -> torch.Tensor:
    """σ (batch,) with ln σ ~ N(P_mean, P_std²), clamped to [σ_min, σ_max]."""
    sigma = (torch.randn(batch) * cfg.p_std + cfg.p_mean).exp()
    return sigma.clamp(cfg.sigma_min, cfg.sigma_max)


def denoising_loss(
    denoise: Denoiser, x0: torch.Tensor, sigma: torch.Tensor, cfg: EdmNoiseConfig
) -> torch.Tensor:
    """E √(λ(σ)‖D(x0 + σ n; σ) − x0‖² + c²) − c: clean chunks x0 (B, Tp, Da), σ (B,) -> scalar."""
    noisy = x0 + as_column(sigma) * torch.randn_like(x0)
    weight = (sigma**2 + cfg.sigma_data**2) / (sigma * cfg.sigma_data) ** 2  # λ(σ), (B,)
    distance = pseudo_huber(denoise(noisy, sigma), x0, huber_c(cfg, x0.shape[1:]), weight)
    return distance.mean()


def edm_loss(
    model: nn.Module,
    obs: Mapping[str, torch.Tensor],
    actions: torch.Tensor,
    *,
    noise: EdmNoiseConfig,
) -> torch.Tensor:
    """The EDM teacher's loss for :class:`DiffusionModel` ``model`` (or its DDP wrapper).

    ``model(obs, c_in x, c_noise)`` is F_θ; ``actions`` are the normalized chunks x0 (B, Tp, Da).
    """

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        c_skip, c_out, c_in, c_noise = edm_scalings(sigma, noise)
        return c_skip * x + c_out * model(obs, c_in * x, c_noise)

    return denoising_loss(denoise, actions, log_normal_sigmas(actions.shape[0], noise), noise)


def train(
    config: EdmConfig, dataset_root: str | Path, out: str | Path, *, stop_after: int | None = None
) -> DiffusionModel:
    """Train (or resume) an EDM teacher: the Diffusion Policy trainer's loop with the EDM loss."""
    from robodistill.diffusion.train import train as train_denoiser

    loss_fn = functools.partial(edm_loss, noise=config.noise)
    return train_denoiser(
        config, dataset_root, out, stop_after=stop_after, method="edm", loss_fn=loss_fn
    )


class EdmSampler:
    """Heun sampling over ``num_bins`` Karras noise levels (2N − 1 network evaluations)."""

    def __init__(self, cfg: EdmNoiseConfig, num_bins: int) -> None:
        if num_bins < 1:
            raise ValueError(f"num_inference_steps (Heun bins) must be >= 1, got {num_bins}")
        self.cfg = cfg
        self.sigmas = torch.cat([karras_sigmas(num_bins, cfg), torch.zeros(1)])  # (N + 1,)

    def __call__(
        self,
        noise_model: NoiseModel,
        global_cond: torch.Tensor,
        noise: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        batch = noise.shape[0]
        x = noise * self.cfg.sigma_max  # x ~ N(0, σ_max² I), (B, Tp, Da)

        def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            return edm_denoise(noise_model, x, sigma, global_cond, self.cfg)

        for sigma, sigma_next in zip(self.sigmas[:-1], self.sigmas[1:], strict=True):
            x = heun_step(
                denoise,
                x,
                sigma.expand(batch),
                sigma_next.expand(batch),
                sigma_floor=self.cfg.sigma_min,
            )
        return x.clamp(-1, 1) if self.cfg.clip_sample else x


def read_method_config(ckpt: Checkpoint, config_cls: type) -> Any:
    """The checkpoint's config as ``config_cls``, checked against its task/obs_mode/embodiment."""
    try:
        config = from_dict(config_cls, ckpt.config, source=str(ckpt.path / "config.json"))
    except ConfigError as err:
        raise CheckpointError(f"{err}; the checkpoint is from an incompatible version") from None
    for name in ("task", "obs_mode", "embodiment"):
        if ckpt.meta.get(name) != getattr(config, name):
            raise CheckpointError(
                f"{ckpt.path / 'config.json'}: {name} {ckpt.meta.get(name)!r} contradicts "
                f"config.{name} {getattr(config, name)!r}; save the checkpoint again"
            )
    return config


def feature_shapes_of(ckpt: Checkpoint) -> dict[str, tuple[int, ...]]:
    """Feature name -> shape, as stored in the checkpoint."""
    return {k: tuple(v) for k, v in ckpt.meta["feature_shapes"].items()}


def load_edm_model(ckpt: Checkpoint) -> tuple[EdmConfig, DiffusionModel]:
    """Config and weights of an ``edm`` checkpoint."""
    config = read_method_config(ckpt, EdmConfig)
    model = DiffusionModel(config, feature_shapes_of(ckpt))
    load_weights(model, ckpt)
    return config, model


def load_edm_policy(
    ckpt: Checkpoint, *, num_inference_steps: int | None = None, scheduler: str | None = None
) -> DiffusionPolicy:
    """The EDM teacher as a policy (Diffusion Policy's rollout, Heun sampler).

    ``num_inference_steps`` is the number of Heun bins N (default ``noise.num_bins``).
    """
    if scheduler not in (None, "heun"):
        raise ValueError(
            f"{ckpt.path} is an EDM policy, sampled with Heun's method; drop --scheduler "
            f"{scheduler} (ddpm/ddim apply to DDPM-trained diffusion checkpoints)"
        )
    config, model = load_edm_model(ckpt)
    sampler = EdmSampler(config.noise, num_inference_steps or config.noise.num_bins)
    normalizer = MinMaxNormalizer(ckpt.meta["normalization"])
    return DiffusionPolicy(model, normalizer, config, feature_shapes_of(ckpt), sampler)
