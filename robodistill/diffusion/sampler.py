"""Samplers: turn a noise model ε_θ and an observation conditioning into an action chunk.

A sampler is separate from the network so that other methods (RTI warm-start, SDP,
consistency students) can swap it: it receives the noise model, the conditioning and the
initial noise, and holds only its immutable scheduler (``set_timesteps`` is called once, at
construction, so one sampler can serve many rollouts and threads).

Reverse process (DDPM, Ho et al. 2020, as used by Chi et al., RSS 2023):
``a^{k-1} = α_k (a^k − γ_k ε_θ(a^k, k, o)) + N(0, σ_k² I)``, from a^K ~ N(0, I) down to a⁰.
DDIM (Song et al., 2021) takes the same trained ε_θ with fewer, deterministic steps.
"""

from __future__ import annotations

from typing import Protocol

import torch
from diffusers import DDIMScheduler, DDPMScheduler

from robodistill.diffusion.config import NoiseConfig, SamplerName
from robodistill.diffusion.unet1d import ConditionalUnet1D


class NoiseModel(Protocol):
    """ε_θ: noisy actions (B, Tp, Da), steps (B,), conditioning (B, C) -> noise (B, Tp, Da)."""

    def __call__(
        self, noisy_actions: torch.Tensor, timesteps: torch.Tensor, global_cond: torch.Tensor
    ) -> torch.Tensor: ...


class Sampler(Protocol):
    """Maps (ε_θ, conditioning (B, C), initial noise (B, Tp, Da)) to normalized actions."""

    def __call__(
        self,
        noise_model: NoiseModel,
        global_cond: torch.Tensor,
        noise: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor: ...


def make_noise_scheduler(
    cfg: NoiseConfig, kind: SamplerName = "ddpm"
) -> DDPMScheduler | DDIMScheduler:
    """The diffusers scheduler for the forward process of ``cfg`` (epsilon prediction)."""
    common = {
        "num_train_timesteps": cfg.num_train_timesteps,
        "beta_schedule": cfg.beta_schedule,
        "clip_sample": cfg.clip_sample,
        "prediction_type": "epsilon",
    }
    if kind == "ddpm":
        return DDPMScheduler(**common)
    if kind == "ddim":
        return DDIMScheduler(**common, set_alpha_to_one=True, steps_offset=0)
    raise ValueError(f"unknown sampler {kind!r}; choose 'ddpm' or 'ddim'")


class SchedulerSampler:
    """Reverse diffusion with a diffusers scheduler over ``num_inference_steps`` steps."""

    def __init__(self, scheduler: DDPMScheduler | DDIMScheduler, num_inference_steps: int) -> None:
        if not 1 <= num_inference_steps <= scheduler.config.num_train_timesteps:
            raise ValueError(
                f"num_inference_steps must be in [1, {scheduler.config.num_train_timesteps}], "
                f"got {num_inference_steps}"
            )
        self.scheduler = scheduler
        self.scheduler.set_timesteps(num_inference_steps)

    def __call__(
        self,
        noise_model: NoiseModel,
        global_cond: torch.Tensor,
        noise: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        sample = noise  # a^K, (B, Tp, Da)
        timesteps = self.scheduler.timesteps
        if isinstance(noise_model, ConditionalUnet1D):  # FiLM of all K steps in one pass
            films = noise_model.film_schedule(timesteps, global_cond)
            for t, film in zip(timesteps, films, strict=True):
                eps = noise_model.modulated(sample, film)
                sample = self.scheduler.step(eps, t, sample, generator=generator).prev_sample
            return sample
        for t in timesteps:  # any other ε_θ, e.g. a guidance wrapper around the U-Net
            eps = noise_model(sample, t.expand(sample.shape[0]), global_cond)
            sample = self.scheduler.step(eps, t, sample, generator=generator).prev_sample
        return sample


def make_sampler(cfg: NoiseConfig, kind: SamplerName, num_inference_steps: int) -> SchedulerSampler:
    """A :class:`SchedulerSampler` for ``kind`` ("ddpm" or "ddim") with the given steps."""
    return SchedulerSampler(make_noise_scheduler(cfg, kind), num_inference_steps)
