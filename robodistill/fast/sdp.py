"""Streaming Diffusion Policy (Høeg, Du & Egeland, "Streaming Diffusion Policy: Fast Policy
Synthesis with Variable Noise Diffusion Models", 2024).

**Variable-noise model.** The noise model takes one diffusion step per action index,
k ∈ {0..K-1}^{Tp} (B, Tp) instead of (B,), so one chunk can hold actions at different noise
levels: ε_θ(a^{k}, k, O) with a^{k}_i = √ᾱ_{k_i} a⁰_i + √(1−ᾱ_{k_i}) ε_i. As in the paper's code,
the per-index sinusoidal embeddings are flattened and mapped by the step MLP to the U-Net's
FiLM step embedding (:class:`VariableNoiseStepEncoder`); the teacher's
:class:`~robodistill.diffusion.unet1d.ConditionalUnet1D` is reused unchanged otherwise.

**Training** minimizes L = E ||ε − ε_θ(a^{k}, k, O)||² with k drawn from a mixture: with
probability ``chunkwise_fraction`` (0.8) the chunk-wise increasing scheme, index i of chunk
c(i) ∈ {0..h-1} at k_i = (c(i)+1)·K/h − 1 − j with one j ~ U{0..K/h−1} per sample, else a
temporally constant k ~ U{0..K−1} (plain Diffusion Policy). Chunks: the Tp indices are split
after the To−1 past ones into h chunks of Ta (index i is in chunk ⌊(i − (To−1)) / Ta⌋, clamped
to [0, h−1]; the past indices belong to chunk 0, trailing ones to chunk h−1).

**Inference** keeps a rolling buffer (B, Tp, Da) whose chunk c sits at inference level
n_c = (c+1)·N/h − 1 of the N-step schedule. Each call runs N/h steps with the newest
observation, each lowering every index one level, so chunk 0 becomes clean; its Ta actions are
executed, the buffer shifts by Ta, a pure-noise chunk (level N−1) is appended at the far end and
indices whose level is below their chunk's (the past indices, trailing ones) are forward-noised
up to it with q(a^{t'} | a^{t}) = N(√(ᾱ_{t'}/ᾱ_t) a^{t}, (1 − ᾱ_{t'}/ᾱ_t) I). The first call
of an episode denoises a pure-noise buffer over all N steps. A control loop thus pays
(N/h)/Ta evaluations of ε_θ per executed action (N/Ta for Diffusion Policy).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler
from torch import nn

from robodistill.diffusion.config import DiffusionConfig
from robodistill.diffusion.policy import (
    DiffusionModel,
    DiffusionPolicy,
    DiffusionRollout,
    FeatureShapes,
    normalize_obs,
)
from robodistill.diffusion.sampler import make_noise_scheduler
from robodistill.diffusion.unet1d import SinusoidalPosEmb
from robodistill.features import ACTION
from robodistill.policy import Observation, Policy


@dataclass
class StreamingConfig:
    """The SDP buffer: h chunks of Ta actions at increasing noise, and the training mixture."""

    num_chunks: int = 2
    """h: chunks in the buffer; each call runs N/h denoising steps (N = inference steps)."""
    chunkwise_fraction: float = 0.8
    """Share of training samples with chunk-wise increasing noise; the rest constant noise."""


@dataclass
class SDPConfig(DiffusionConfig):
    """A Diffusion Policy config plus ``[streaming]``; recipes in ``policies/sdp/``."""

    streaming: StreamingConfig = field(default_factory=StreamingConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        h = self.streaming.num_chunks
        if h < 1:
            raise ValueError(f"streaming.num_chunks must be >= 1, got {h}")
        room = self.horizon - (self.n_obs_steps - 1)
        if h * self.n_action_steps > room:
            raise ValueError(
                f"streaming.num_chunks ({h}) x n_action_steps ({self.n_action_steps}) exceeds "
                f"the {room} future actions of the horizon (horizon - n_obs_steps + 1); lower "
                "one of them or raise horizon"
            )
        for name, steps in (
            ("noise.num_train_timesteps", self.noise.num_train_timesteps),
            ("noise.num_inference_steps", self.noise.num_inference_steps),
        ):
            if steps % h:
                raise ValueError(f"{name} ({steps}) must be divisible by streaming.num_chunks {h}")
        if not 0 <= self.streaming.chunkwise_fraction <= 1:
            raise ValueError("streaming.chunkwise_fraction must be in [0, 1]")


def chunk_ids(config: SDPConfig) -> torch.Tensor:
    """Chunk c(i) ∈ {0..h-1} of every chunk index i: (Tp,) long."""
    offset = torch.arange(config.horizon) - (config.n_obs_steps - 1)  # (Tp,)
    c = torch.div(offset, config.n_action_steps, rounding_mode="floor")
    return c.clamp(0, config.streaming.num_chunks - 1)


class VariableNoiseStepEncoder(nn.Module):
    """Per-index diffusion steps k (B, Tp) (or (B,), broadcast) -> step embedding (B, D).

    Sinusoidal embedding of every index's step, flattened, then the step MLP (as the teacher's,
    with a Tp-times wider input): the U-Net's FiLM layers see the whole noise profile.
    """

    def __init__(self, horizon: int, dim: int) -> None:
        super().__init__()
        self.horizon = horizon
        self.embed = SinusoidalPosEmb(dim)
        self.mlp = nn.Sequential(
            nn.Linear(horizon * dim, 4 * dim), nn.Mish(), nn.Linear(4 * dim, dim)
        )

    def forward(self, k: torch.Tensor) -> torch.Tensor:
        if k.ndim == 1:
            k = k[:, None].expand(-1, self.horizon)  # (B,) -> (B, Tp): constant noise
        if k.shape[1] != self.horizon:
            raise ValueError(
                f"per-index steps have shape {tuple(k.shape)}, need (B, {self.horizon})"
            )
        emb = self.embed(k.reshape(-1))  # (B*Tp, D)
        return self.mlp(emb.reshape(k.shape[0], -1))  # (B, Tp*D) -> (B, D)


class SDPModel(DiffusionModel):
    """The teacher's encoder + U-Net with a :class:`VariableNoiseStepEncoder`."""

    def __init__(self, config: DiffusionConfig, feature_shapes: FeatureShapes) -> None:
        super().__init__(config, feature_shapes)
        dim = config.unet.diffusion_step_embed_dim
        self.unet.step_encoder = VariableNoiseStepEncoder(config.horizon, dim)


def variable_noise_steps(
    config: SDPConfig, batch_size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Training steps k (B, Tp) from the paper's mixture (see the module docstring)."""
    num_train = config.noise.num_train_timesteps
    per_chunk = num_train // config.streaming.num_chunks
    j = torch.randint(0, per_chunk, (batch_size, 1), generator=generator)
    chunkwise = (chunk_ids(config) + 1) * per_chunk - 1 - j  # (B, Tp)
    constant = torch.randint(0, num_train, (batch_size, 1), generator=generator)  # (B, 1)
    use_chunkwise = (
        torch.rand(batch_size, 1, generator=generator) < config.streaming.chunkwise_fraction
    )
    return torch.where(use_chunkwise, chunkwise, constant.expand_as(chunkwise))


def sdp_loss(
    model: nn.Module,
    scheduler: DDPMScheduler,
    obs: Mapping[str, torch.Tensor],
    actions: torch.Tensor,
    *,
    config: SDPConfig,
) -> torch.Tensor:
    """E ||ε − ε_θ(√ᾱ_k a⁰ + √(1−ᾱ_k) ε, k, O)||² with per-index k (B, Tp) from the mixture."""
    k = variable_noise_steps(config, actions.shape[0])  # (B, Tp)
    noise = torch.randn_like(actions)
    alpha_bar = scheduler.alphas_cumprod[k][..., None]  # (B, Tp, 1)
    noisy = alpha_bar.sqrt() * actions + (1 - alpha_bar).sqrt() * noise
    return F.mse_loss(model(obs, noisy, k), noise)


def train_sdp(
    config: SDPConfig, dataset_root: str | Path, out: str | Path, *, stop_after: int | None = None
) -> DiffusionModel:
    """The teacher's training loop with the variable-noise model and objective."""
    from robodistill.diffusion.train import train

    scheduler = make_noise_scheduler(config.noise, "ddpm")
    loss_fn = functools.partial(sdp_loss, scheduler=scheduler, config=config)
    return train(
        config,
        dataset_root,
        out,
        stop_after=stop_after,
        method="sdp",
        model_cls=SDPModel,
        loss_fn=loss_fn,
    )


class SDPPolicy(DiffusionPolicy):
    """An SDP checkpoint as a plain chunk-sampling policy (constant noise per step).

    Wrap it in :class:`StreamingPolicy` for the buffer sampler, or in
    :class:`robodistill.fast.rti.RTIPolicy`.
    """

    config_cls = SDPConfig
    model_cls = SDPModel


def variable_step(
    scheduler: DDPMScheduler | DDIMScheduler,
    eps: torch.Tensor,
    sample: torch.Tensor,
    t: torch.Tensor,
    t_prev: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One reverse step per index from step t (B, Tp) to t_prev (B, Tp) (-1: clean).

    x̂⁰ = (a − √(1−ᾱ_t) ε) / √ᾱ_t (clipped to [-1, 1] if the scheduler clips); DDIM (η = 0):
    a' = √ᾱ_{t'} x̂⁰ + √(1−ᾱ_{t'}) ε; DDPM: the posterior q(a^{t'} | a^t, x̂⁰) with
    α = ᾱ_t/ᾱ_{t'}, mean (√ᾱ_{t'} (1−α) x̂⁰ + √α (1−ᾱ_{t'}) a) / (1−ᾱ_t) and variance
    (1−ᾱ_{t'}) (1−α) / (1−ᾱ_t), no noise into a clean index. Per index, this is what the
    diffusers scheduler's ``step`` computes for a shared t.
    """
    alphas = scheduler.alphas_cumprod
    ab_t = alphas[t.clamp(min=0)][..., None]  # (B, Tp, 1)
    ab_prev = torch.where(t_prev >= 0, alphas[t_prev.clamp(min=0)], 1.0)[..., None]
    x0 = (sample - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()
    if scheduler.config.clip_sample:
        x0 = x0.clamp(-1, 1)
    if isinstance(scheduler, DDIMScheduler):
        return ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps
    alpha = ab_t / ab_prev
    mean = (ab_prev.sqrt() * (1 - alpha) * x0 + alpha.sqrt() * (1 - ab_prev) * sample) / (1 - ab_t)
    variance = ((1 - ab_prev) * (1 - alpha) / (1 - ab_t)).clamp(min=1e-20)
    noise = torch.randn(sample.shape, generator=generator)
    return mean + (t_prev >= 0)[..., None] * variance.sqrt() * noise


class StreamingPolicy(Policy):
    """The SDP buffer sampler over an SDP checkpoint; state in :class:`StreamingRollout`."""

    def __init__(self, base: DiffusionPolicy) -> None:
        config = base.config
        if not isinstance(config, SDPConfig) or not isinstance(
            base.model.unet.step_encoder, VariableNoiseStepEncoder
        ):
            raise ValueError(
                "the SDP buffer sampler needs a model trained with variable noise (per-index "
                "diffusion steps); this checkpoint is a plain diffusion teacher. Train one with "
                "`robodistill train --recipe sdp/<task> ...` or use --sampler chunk/rti"
            )
        scheduler = base.sampler.scheduler
        steps = len(scheduler.timesteps)
        h = config.streaming.num_chunks
        if steps % h:
            raise ValueError(
                f"the buffer sampler runs N/h steps per call: N = {steps} inference steps must "
                f"be divisible by h = streaming.num_chunks = {h}; pass --steps "
                f"{h * max(steps // h, 1)}"
            )
        self.base = base
        self.scheduler = scheduler
        self.level_timesteps = scheduler.timesteps.flip(0)  # level n -> step t(n), (N,)
        self.steps_per_call = steps // h
        self.target_levels = (chunk_ids(config) + 1) * self.steps_per_call - 1  # (Tp,)
        self.info = base.info

    def new_rollout(self, num_envs: int = 1, seed: int | None = None) -> StreamingRollout:
        """Fresh buffers (filled at the first call) for ``num_envs`` envs."""
        return StreamingRollout(self, num_envs, 0 if seed is None else seed)

    def alpha_bar(self, levels: torch.Tensor) -> torch.Tensor:
        """ᾱ at inference levels (any shape; level -1, clean, has ᾱ = 1)."""
        t = self.level_timesteps[levels.clamp(min=0)]
        return torch.where(levels >= 0, self.scheduler.alphas_cumprod[t], 1.0)

    def denoise_front(
        self,
        buffer: torch.Tensor,
        levels: torch.Tensor,
        global_cond: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> None:
        """Step buffers (n, Tp, Da) in place, one level per step, until chunk 0 is clean.

        ``levels`` (n, Tp) are inference levels (-1: clean), updated in place. An env takes a
        step while the last executed index (To-1+Ta-1) is noisy; clean indices stay as they are.
        """
        last = self.base.config.n_obs_steps - 1 + self.base.config.n_action_steps - 1
        unet = self.base.model.unet
        while True:
            envs = (levels[:, last] >= 0).nonzero().squeeze(1)
            if not len(envs):
                return
            lv = levels[envs]  # (m, Tp)
            t = self.level_timesteps[lv.clamp(min=0)]
            t_prev = torch.where(lv > 0, self.level_timesteps[(lv - 1).clamp(min=0)], -1)
            eps = unet(buffer[envs], t, global_cond[envs])
            stepped = variable_step(self.scheduler, eps, buffer[envs], t, t_prev, generator)
            noisy = (lv >= 0)[..., None]
            buffer[envs] = torch.where(noisy, stepped, buffer[envs])
            levels[envs] = (lv - 1).clamp(min=-1)

    def advance(
        self, buffer: torch.Tensor, levels: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Drop the executed Ta actions, append pure noise, lift every index to its chunk level."""
        ta = self.base.config.n_action_steps
        n, _, da = buffer.shape
        top = len(self.level_timesteps) - 1
        buffer = torch.cat([buffer[:, ta:], torch.randn((n, ta, da), generator=generator)], 1)
        levels = torch.cat([levels[:, ta:], torch.full((n, ta), top)], 1)  # (n, Tp)
        target = self.target_levels.expand_as(levels)
        ratio = (self.alpha_bar(target) / self.alpha_bar(levels))[..., None]  # ᾱ_{t'} / ᾱ_t
        lift = (levels < target)[..., None]
        noise = torch.randn(buffer.shape, generator=generator)
        lifted = ratio.sqrt() * buffer + (1 - ratio).sqrt() * noise  # q(a^{t'} | a^t)
        return torch.where(lift, lifted, buffer), torch.maximum(levels, target)


class StreamingRollout(DiffusionRollout):
    """Observation history and action queue (from :class:`DiffusionRollout`) plus each env's
    noisy buffer (B, Tp, Da) and the inference level of every buffer index (B, Tp)."""

    def __init__(self, policy: StreamingPolicy, num_envs: int, seed: int = 0) -> None:
        super().__init__(policy.base, num_envs, seed)
        self.stream = policy
        cfg = policy.base.config
        self._buffer = torch.zeros(num_envs, cfg.horizon, policy.info.action_dim)  # normalized
        self._levels = torch.zeros(num_envs, cfg.horizon, dtype=torch.long)
        self._warm = torch.zeros(num_envs, dtype=torch.bool)  # buffer holds a stream

    def _stream(self, envs: torch.Tensor) -> torch.Tensor:
        """One streaming call for the env indices ``envs``: their normalized chunks (n, Tp, Da)."""
        stream, base = self.stream, self.policy
        history = {k: v[envs] for k, v in self._history.items()}
        cond = base.model.encoder(normalize_obs(base.normalizer, history))  # (n, C)
        buffer, levels = self._buffer[envs], self._levels[envs]
        cold = ~self._warm[envs]
        if cold.any():  # first call of an episode: pure noise everywhere, N steps
            buffer[cold] = torch.randn(
                (int(cold.sum()), *buffer.shape[1:]), generator=self._generator
            )
            levels[cold] = len(stream.level_timesteps) - 1
        stream.denoise_front(buffer, levels, cond, self._generator)
        chunk = buffer.clone()
        self._buffer[envs], self._levels[envs] = stream.advance(buffer, levels, self._generator)
        self._warm[envs] = True
        return chunk

    @torch.inference_mode()
    def select_action(self, obs: Observation) -> np.ndarray:
        self.observe(obs)
        empty = self._queue_pos >= self._ta  # (B,)
        if empty.any():
            envs = empty.nonzero().squeeze(1)
            chunk = self._stream(envs)[:, self._chunk_start : self._chunk_start + self._ta]
            self._queue[empty] = self.policy.normalizer.unnormalize(ACTION, chunk)
            self._queue_pos[empty] = 0
        action = self._queue[self._env_ids, self._queue_pos]  # (B, Da)
        self._queue_pos += 1
        return action.numpy()

    @torch.inference_mode()
    def predict_action_chunk(self, obs: Observation) -> np.ndarray:
        """The buffer after one streaming call (B, Tp, Da): clean up to index To-1+Ta, the
        look-ahead after it still partly noisy; the stream advances by Ta."""
        self.observe(obs)
        chunk = self._stream(torch.arange(self.num_envs))
        return self.policy.normalizer.unnormalize(ACTION, chunk).numpy()

    def reset(self, env_mask: np.ndarray | None = None) -> None:
        super().reset(env_mask)
        mask = slice(None) if env_mask is None else torch.as_tensor(np.asarray(env_mask, bool))
        self._warm[mask] = False
