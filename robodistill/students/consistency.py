"""Consistency Policy (Prasad et al., "Consistency Policy: Accelerated Visuomotor Policies via
Consistency Distillation", RSS 2024): a 1–3 step student distilled from a diffusion teacher
with the Consistency Trajectory Model objective (CTM, Kim et al., ICLR 2024) plus DSM.

Student (CTM's anytime-to-anytime jump, EDM preconditioning of :mod:`.edm`)::

    G_θ(x, t, s) = (s/t) x + (1 − s/t) g_θ(x, t, s)
    g_θ(x, t, s) = c_skip(t) x + c_out(t) F_θ(c_in(t) x, c_noise(t), c_noise(s), o)

so G_θ(x, t, t) = x and G_θ(x, σ_min, ·) = x by construction. F_θ is the teacher's U-Net whose
FiLM conditioning gets the step embedding of s beside that of t ([emb(t), emb(s), o]), with
dropout in its residual blocks (CP's ablation: dropout matters for the student).

Objective, L = α L_CTM + β L_DSM (α = β = 1 in the paper), on the Karras grid σ_0 > ... >
σ_{N−1} = σ_min: t = σ_i, u = σ_{i+1} adjacent, s uniform on the grid in [σ_min, u],
x_t = x0 + t n::

    x̂_u    = Heun_teacher(x_t; t → u)                        (one ODE step of the teacher)
    L_CTM  = E d( G_θ⁻(G_θ(x_t, t, s), s, σ_min),  G_θ⁻(G_θ⁻(x̂_u, u, s), s, σ_min) )
    L_DSM  = E √(λ(σ)‖G_θ(x0 + σ n, σ, σ_min) − x0‖² + c²) − c        (edm.denoising_loss)

with d the pseudo-Huber distance and θ⁻ a stop-gradient EMA of θ (θ⁻ ← μθ⁻ + (1−μ)θ; μ = 0 in
CP's released config): gradients reach θ through G_θ only, also through the input of the
outer θ⁻ jump. DSM noise levels are half from the upper 70% of the Karras curve and half
log-normal, as in CP's code, so the one-step jump from σ_max is trained directly.

Teachers, each seen as an EDM denoiser D(x; σ, o):

* ``edm`` (:mod:`.edm`): the preconditioned network itself.
* ``diffusion`` (DDPM ε-prediction, Chi et al. 2023), by the exact DDPM→σ conversion
  σ_k = √((1 − ᾱ_k)/ᾱ_k), x_σ = x_k/√ᾱ_k, hence
  D(x; σ) = x − σ ε_θ(√ᾱ(σ) x, k(σ)) with ᾱ(σ) = 1/(1 + σ²) and k(σ) the timestep at σ,
  linearly interpolated in ln σ between the integer timesteps; the grid is clipped to the σ
  range the DDPM covers, [σ_0, σ_{K−1}].

Sampling: one step a = G_θ(σ_max z, σ_max, σ_min); n steps chain it (consistency models'
multistep sampler): re-noise a + σ_j z_j at grid bins ⌈jN/n⌉ (CP's bins 0, 27, 54 of 80 for
three steps) and jump to σ_min again. Each result is clipped to [-1, 1].
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from robodistill.checkpoint import Checkpoint, CheckpointError, load_weights, read_checkpoint
from robodistill.diffusion.config import (
    DiffusionConfig,
    EncoderConfig,
    ObsMode,
    TrainConfig,
    UnetConfig,
)
from robodistill.diffusion.normalizer import MinMaxNormalizer
from robodistill.diffusion.obs_encoder import ObsEncoder
from robodistill.diffusion.policy import DiffusionModel, DiffusionPolicy
from robodistill.diffusion.sampler import make_noise_scheduler
from robodistill.diffusion.unet1d import ConditionalResidualBlock1D, ConditionalUnet1D
from robodistill.features import ACTION
from robodistill.students.edm import (
    EdmNoiseConfig,
    as_column,
    denoising_loss,
    edm_denoise,
    edm_scalings,
    feature_shapes_of,
    heun_step,
    huber_c,
    karras_sigmas,
    load_edm_model,
    log_normal_sigmas,
    pseudo_huber,
    read_method_config,
)

TEACHER_METHODS = ("edm", "diffusion")
"""Checkpoint methods a student can be distilled from."""


@dataclass
class CtmConfig:
    """The distillation objective L = α L_CTM + β L_DSM."""

    ctm_weight: float = 1.0
    """α."""
    dsm_weight: float = 1.0
    """β."""
    target_ema_decay: float = 0.0
    """μ of the stop-gradient target θ⁻ ← μθ⁻ + (1−μ)θ (0: θ⁻ = sg(θ), as in CP's code)."""
    dsm_karras_fraction: float = 0.7
    """DSM draws half of its σ from the first (noisiest) fraction of the Karras curve."""


@dataclass
class ConsistencyConfig:
    """A consistency student. Fields left None are the teacher's (filled in at distillation
    and stored resolved in the checkpoint); given ones must agree with the teacher."""

    task: str | None = None
    obs_mode: ObsMode | None = None
    embodiment: str | None = None
    n_obs_steps: int | None = None
    """To (must equal the teacher's)."""
    horizon: int | None = None
    """Tp (must equal the teacher's)."""
    n_action_steps: int | None = None
    """Ta (may differ from the teacher's; must fit in Tp)."""
    action_dim: int | None = None
    """Da (must equal the teacher's)."""
    unet: UnetConfig | None = None
    """None: the teacher's U-Net, initialized from its weights. Given: a U-Net of these sizes
    (e.g. fewer channels for the fastest deploys), trained from random weights."""
    encoder: EncoderConfig | None = None
    """Always the teacher's trained observation encoder, frozen (CP's code does the same);
    leave it out of recipes."""
    dropout: float = 0.2
    """Dropout in the U-Net's down/up residual blocks (CP uses 0.2)."""
    num_inference_steps: int = 1
    """Default steps of a loaded student (``load_policy(..., num_inference_steps=2)``)."""
    noise: EdmNoiseConfig = field(default_factory=EdmNoiseConfig)
    """Noise levels and grid; a DDPM teacher clips [sigma_min, sigma_max] to its own range."""
    ctm: CtmConfig = field(default_factory=CtmConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    teacher_method: str | None = None
    """Filled in: the teacher's method (``edm`` or ``diffusion``)."""
    teacher_sha256: str | None = None
    """Filled in: SHA-256 of the teacher's weights, so a resumed run refuses another teacher."""

    def __post_init__(self) -> None:
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 1 <= self.num_inference_steps <= self.noise.num_bins:
            raise ValueError(
                f"num_inference_steps must be in [1, noise.num_bins={self.noise.num_bins}], "
                f"got {self.num_inference_steps}"
            )


# ---------------------------------------------------------------- the student network


def add_dropout(unet: ConditionalUnet1D, p: float) -> None:
    """Append Dropout(p) to both conv blocks of every down/up residual block of ``unet``.

    CP's student drops features inside the residual blocks of the down and up paths; here
    dropout ends each conv block (before FiLM, and on the residual branch). Dropout has no
    weights, so the teacher's state-dict keys still fit.
    """
    if p == 0:
        return
    for level in [*unet.down, *unet.up]:
        for block in level:
            if isinstance(block, ConditionalResidualBlock1D):
                block.block1.append(nn.Dropout(p))
                block.block2.append(nn.Dropout(p))


class ConsistencyModel(nn.Module):
    """Observation encoder + U-Net F_θ conditioned on [emb(c_noise(t)), emb(c_noise(s)), o]."""

    def __init__(self, config: ConsistencyConfig, feature_shapes: Mapping[str, tuple[int, ...]]):
        super().__init__()
        if config.unet is None or config.encoder is None or config.n_obs_steps is None:
            raise ValueError(
                "fill the teacher's fields in first (robodistill.students.distill.resolve_config)"
            )
        self.encoder = ObsEncoder(config.encoder, feature_shapes)
        step_dim = config.unet.diffusion_step_embed_dim
        self.unet = ConditionalUnet1D(
            action_dim=feature_shapes[ACTION][0],
            global_cond_dim=step_dim + config.n_obs_steps * self.encoder.feature_dim,
            down_dims=config.unet.down_dims,
            diffusion_step_embed_dim=step_dim,
            kernel_size=config.unet.kernel_size,
            n_groups=config.unet.n_groups,
        )
        add_dropout(self.unet, config.dropout)

    def init_from_teacher(self, teacher: DiffusionModel, same_unet: bool) -> None:
        """Copy the teacher's encoder, and its U-Net too when ``same_unet``.

        The FiLM layers see [emb(t), emb(s), o] instead of [emb(t), o]: the columns for emb(s)
        start at zero, so the initial student is g_θ = the teacher's network and G_θ(x, t, s)
        one Euler step of its ODE (exactly so for an EDM teacher).
        """
        self.encoder.load_state_dict(teacher.encoder.state_dict())
        if not same_unet:
            return
        step_dim = self.unet.step_encoder[-1].out_features
        weights = {}
        for key, value in teacher.unet.state_dict().items():
            if key.endswith("film.1.weight"):  # (2C, dsed + To*F) -> (2C, 2*dsed + To*F)
                zeros = value.new_zeros(value.shape[0], step_dim)
                value = torch.cat([value[:, :step_dim], zeros, value[:, step_dim:]], dim=1)
            weights[key] = value
        self.unet.load_state_dict(weights)


def ctm_jump(
    unet: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    s: torch.Tensor,
    global_cond: torch.Tensor,
    cfg: EdmNoiseConfig,
) -> torch.Tensor:
    """G(x, t, s) = (s/t) x + (1 − s/t) g(x, t, s): x (B, Tp, Da) at σ = t (B,) -> at σ = s (B,)."""
    c_skip, c_out, c_in, c_noise = edm_scalings(t, cfg)
    cond = torch.cat([unet.step_encoder(250 * s.log()), global_cond], dim=-1)  # (B, dsed + C)
    g = c_skip * x + c_out * unet(c_in * x, c_noise, cond)
    ratio = as_column(s / t)
    return ratio * x + (1 - ratio) * g


class ConsistencySampler:
    """One jump σ_max → σ_min, then re-noise and jump again at each chaining level."""

    def __init__(self, cfg: EdmNoiseConfig, num_steps: int) -> None:
        if not 1 <= num_steps <= cfg.num_bins:
            raise ValueError(
                f"num_inference_steps of a consistency student must be in [1, {cfg.num_bins}] "
                f"(1-3 are what it is trained for), got {num_steps}"
            )
        self.cfg = cfg
        grid = karras_sigmas(cfg.num_bins, cfg)
        bins = [math.ceil(j * cfg.num_bins / num_steps) for j in range(num_steps)]
        self.levels = grid[bins]  # (n,): σ_max first, then the chaining levels

    def __call__(
        self,
        noise_model: nn.Module,
        global_cond: torch.Tensor,
        noise: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        batch = noise.shape[0]
        end = torch.full((batch,), self.cfg.sigma_min)
        sigma = self.levels[0].expand(batch)
        actions = ctm_jump(noise_model, noise * sigma[0], sigma, end, global_cond, self.cfg)
        for level in self.levels[1:]:  # re-noise the estimate to σ = level and jump again
            noisy = actions.clamp(-1, 1) + level * torch.randn(noise.shape, generator=generator)
            actions = ctm_jump(noise_model, noisy, level.expand(batch), end, global_cond, self.cfg)
        return actions.clamp(-1, 1)


# ---------------------------------------------------------------- the teacher


@dataclass
class Teacher:
    """A frozen diffusion checkpoint seen as an EDM denoiser D(x; σ, o)."""

    ckpt: Checkpoint
    config: DiffusionConfig
    model: DiffusionModel
    noise: EdmNoiseConfig
    """The EDM teacher's noise config; for a DDPM teacher the student's, σ-range clipped."""
    ddpm_log_sigmas: torch.Tensor | None
    """ln σ_k of a DDPM teacher's timesteps k = 0..K−1 (K,), None for EDM."""

    @property
    def method(self) -> str:
        return self.ckpt.method

    def denoise(
        self, x: torch.Tensor, sigma: torch.Tensor, global_cond: torch.Tensor
    ) -> torch.Tensor:
        """D(x; σ): (B, Tp, Da), (B,), (B, C) -> (B, Tp, Da)."""
        if self.ddpm_log_sigmas is None:
            return edm_denoise(self.model.unet, x, sigma, global_cond, self.noise)
        k = self.timestep(sigma)
        scale = as_column((1 + sigma**2).rsqrt())  # √ᾱ(σ)
        return x - as_column(sigma) * self.model.unet(scale * x, k, global_cond)

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """k(σ): fractional DDPM timestep, linear in ln σ between integer timesteps (B,)."""
        table = self.ddpm_log_sigmas
        log_sigma = sigma.log().clamp(table[0], table[-1])
        upper = torch.searchsorted(table, log_sigma).clamp(1, len(table) - 1)
        low, high = table[upper - 1], table[upper]
        return (upper - 1).float() + (log_sigma - low) / (high - low)


def load_teacher(path: str | Path, noise: EdmNoiseConfig) -> Teacher:
    """Read a teacher checkpoint; a CheckpointError unless it is an EDM or DDPM diffusion one.

    ``noise`` is the student's noise config, used to clip a DDPM teacher's σ range.
    """
    ckpt = read_checkpoint(path)
    if ckpt.method not in TEACHER_METHODS:
        raise CheckpointError(
            f"{ckpt.path} is a {ckpt.method!r} checkpoint, not a diffusion teacher: distill from "
            "a checkpoint of `robodistill train --recipe diffusion/...` (DDPM) or "
            "`--recipe edm/...` (EDM)"
        )
    if ckpt.method == "edm":
        config, model = load_edm_model(ckpt)
        teacher_noise, log_sigmas = config.noise, None
    else:
        config = read_method_config(ckpt, DiffusionConfig)
        model = DiffusionModel(config, feature_shapes_of(ckpt))
        load_weights(model, ckpt)
        alphas = make_noise_scheduler(config.noise, "ddpm").alphas_cumprod.double()  # ᾱ_k, (K,)
        sigmas = ((1 - alphas) / alphas).sqrt()  # σ_k, increasing in k
        teacher_noise = dataclasses.replace(
            noise,
            sigma_min=max(noise.sigma_min, sigmas[0].item()),
            sigma_max=min(noise.sigma_max, sigmas[-1].item()),
        )
        log_sigmas = sigmas.log().float()
    model.eval().requires_grad_(False)
    return Teacher(ckpt, config, model, teacher_noise, log_sigmas)


# ---------------------------------------------------------------- the objective


def distillation_loss(
    unet: nn.Module,
    target_unet: nn.Module,
    teacher: Teacher,
    global_cond: torch.Tensor,
    x0: torch.Tensor,
    config: ConsistencyConfig,
    grid: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, float]]:
    """α L_CTM + β L_DSM on normalized chunks x0 (B, Tp, Da) with obs features (B, C).

    ``grid`` is the Karras discretization (N,); ``target_unet`` holds θ⁻ (no gradients).
    """
    cfg, ctm = config.noise, config.ctm
    batch, num = x0.shape[0], len(grid)
    end = torch.full((batch,), cfg.sigma_min)

    # ---- CTM: teacher's Heun step t -> u, both jump to s, then to σ_min
    i = torch.randint(0, num - 1, (batch,))
    j = i + 1
    k = j + (torch.rand(batch) * (num - j)).long()  # uniform on [j, N-1]
    t, u, s = grid[i], grid[j], grid[k]
    x_t = x0 + as_column(t) * torch.randn_like(x0)
    with torch.no_grad():
        x_u = heun_step(
            lambda x, sig: teacher.denoise(x, sig, global_cond),
            x_t,
            t,
            u,
            sigma_floor=cfg.sigma_min,
        )
        target = ctm_jump(target_unet, x_u, u, s, global_cond, cfg)
        target = ctm_jump(target_unet, target, s, end, global_cond, cfg)
    jumped = ctm_jump(unet, x_t, t, s, global_cond, cfg)
    pred = ctm_jump(target_unet, jumped, s, end, global_cond, cfg)  # grads via the input only
    loss_ctm = pseudo_huber(pred, target, huber_c(cfg, x0.shape[1:])).mean()

    # ---- DSM: denoise in one jump from σ to σ_min
    half = batch // 2
    xi = torch.rand(batch - half) * ctm.dsm_karras_fraction
    low, high = cfg.sigma_min ** (1 / cfg.rho), cfg.sigma_max ** (1 / cfg.rho)
    sigma = torch.cat([(high + xi * (low - high)) ** cfg.rho, log_normal_sigmas(half, cfg)])
    loss_dsm = denoising_loss(
        lambda x, sig: ctm_jump(unet, x, sig, end, global_cond, cfg), x0, sigma, cfg
    )
    loss = ctm.ctm_weight * loss_ctm + ctm.dsm_weight * loss_dsm
    return loss, {"ctm": loss_ctm.item(), "dsm": loss_dsm.item()}


# ---------------------------------------------------------------- loading a student


def load_consistency_policy(
    ckpt: Checkpoint, *, num_inference_steps: int | None = None, scheduler: str | None = None
) -> DiffusionPolicy:
    """A distilled student as a policy: the teacher's rollout (To history, Ta queue) with the
    consistency sampler of ``num_inference_steps`` (default: the config's, usually 1)."""
    if scheduler is not None:
        raise ValueError(
            f"{ckpt.path} is a consistency student; it has no --scheduler (drop it), only "
            "--steps 1, 2 or 3"
        )
    config = read_method_config(ckpt, ConsistencyConfig)
    feature_shapes = feature_shapes_of(ckpt)
    model = ConsistencyModel(config, feature_shapes)
    load_weights(model, ckpt)
    sampler = ConsistencySampler(config.noise, num_inference_steps or config.num_inference_steps)
    normalizer = MinMaxNormalizer(ckpt.meta["normalization"])
    return DiffusionPolicy(model, normalizer, config, feature_shapes, sampler)
