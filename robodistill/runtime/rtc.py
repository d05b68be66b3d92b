"""Real-time chunking (RTC) for ε-prediction diffusion policies, and the guided-prefix hook.

Black, Galliker and Levine (2025), "Real-Time Execution of Action Chunking Flow Policies":
while a new chunk is being sampled, the robot keeps executing the previous one. The first
``d`` actions of the new chunk (d = inference delay in control steps) fall on steps that will
already have been executed from the previous chunk, so they are *frozen* to it; the following
ones, still covered by the previous chunk, are guided toward it with weights that decay
exponentially; the rest of the new chunk is free. Over the new chunk's indices ``j`` counted
from the observation step (``overlap`` = how many previous actions remain from there)::

    W_j = 1                              for 0 <= j < d
    W_j = c_j (e^{c_j} - 1) / (e - 1),   c_j = (overlap - j) / (overlap - d + 1),  d <= j < overlap
    W_j = 0                              otherwise (and for the To - 1 past steps of the chunk)

The paper guides a flow-matching policy. Ours are ε-prediction diffusion policies (DDPM/DDIM),
so the guidance is applied through the predicted clean sample, in ``method="pigdm"`` mode
(ΠGDM, Song et al., 2023, "Pseudoinverse-Guided Diffusion Models for Inverse Problems"):

1. x̂0 = (x_k − √(1−ᾱ_k) ε_θ(x_k)) / √ᾱ_k                 (the sampler's own clean estimate)
2. g = (W ⊙ (Y − x̂0))ᵀ ∂x̂0/∂x_k                          (one vector-Jacobian product)
3. ε' = ε_θ(x_k) − √(1−ᾱ_k) · min(β, 1/r_k²) · g,  r_k² = 1 − ᾱ_k

Step 3 adds ΠGDM's likelihood score ∇ log p(Y | x_k) ≈ g / r_k² to the model's score
−ε/√(1−ᾱ_k); the weight is clipped at β (RTC's β = 5) as the paper clips its guidance weight.
``Y`` is the previous chunk's unexecuted actions, normalized and placed at the new chunk's
indices. ``method="replace"`` is the cheaper inpainting by replacement (no gradient): the
clean estimate is blended toward Y, x̂0' = x̂0 + w ⊙ (Y − x̂0), and the sampler receives the ε
that implies it, ε' = (x_k − √ᾱ_k x̂0') / √(1−ᾱ_k). Blending at each of the sampler's K steps
compounds, so the per-step weight is w = 1 − (1 − W)^(1/K): the total pull toward Y is W
(a per-step W = 0.2 would pull 1 − 0.8^10 = 89% over 10 steps and freeze the whole overlap).
With W = 1 the frozen part equals Y exactly.

Replacement is the runtime's default. Measured on a push teacher (DDIM 10, To 2, Tp 16, 5
seeds, d = 2 frozen steps): mean max-abs distance to Y on the frozen steps 0.35 unguided,
0.30 ΠGDM β = 5, 0.12 ΠGDM β = 1000, 0.00 replacement; on the decaying steps 0.36 / 0.22 /
0.13 / 0.10; ΠGDM doubles the chunk time (one backward pass per step), replacement adds none.
In ε-parameterization the clip bounds the clean-estimate correction to min(1, β(1−ᾱ_k)) of the
residual, so with β = 5 the last, low-noise steps are barely guided.

**The hook.** Both modes act only through the noise model: :class:`PrefixGuidedNoiseModel`
wraps any ε_θ(a^k, k, cond) and is passed to an unchanged sampler in its place, so every
ε-prediction sampler (DDPM, DDIM, RTI warm starts, SDP's per-position noise levels, as long as
``timesteps`` index ``alphas_cumprod``) takes a guided prefix without edits. A rollout exposes
prefix-guided sampling to the runtime by defining ``predict_action_chunk_with_prefix(obs,
prefix: ActionPrefix) -> (B, Tp, Da)`` (see :class:`PrefixRollout`); :func:`prefix_predictor`
finds it, and adapts the diffusion teacher's rollout until it defines it itself. Students that
predict x̂0 directly (consistency models) apply step 1's replacement to their output.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import torch

from robodistill.policy import Observation, Rollout

GuidanceMethod = Literal["pigdm", "replace"]


@dataclass(frozen=True)
class ActionPrefix:
    """What a new chunk should continue: targets and weights at the new chunk's indices."""

    actions: np.ndarray
    """Y: (Tp, Da) target actions in env units (the previous chunk's, 0 where it has none)."""
    weights: np.ndarray
    """W: (Tp,) guidance weights in [0, 1] (:func:`rtc_weights`)."""
    frozen: int
    """d: steps of the new chunk (from the observation step) that execute before it arrives."""


def rtc_weights(horizon: int, start: int, frozen: int, overlap: int) -> np.ndarray:
    """RTC's soft mask (Tp,): chunk index ``start + j`` is observation step + j (module doc)."""
    weights = np.zeros(horizon, dtype=np.float32)
    for j in range(max(0, horizon - start)):
        if j >= overlap:
            break
        if j < frozen:
            weights[start + j] = 1.0
        else:
            c = (overlap - j) / (overlap - frozen + 1)
            weights[start + j] = c * math.expm1(c) / math.expm1(1.0)
    return weights


class PrefixGuidedNoiseModel:
    """ε_θ with RTC prefix guidance (ΠGDM or replacement); pass it to a sampler in place of ε_θ.

    ``target`` (B, Tp, Da) is Y in the sampler's normalized action space, ``weights`` (Tp,) is
    W, ``alphas_cumprod`` the scheduler's ᾱ, ``steps`` the number of denoising steps the
    sampler takes (K, for the per-step replacement weight). Works inside
    ``torch.inference_mode``: the ΠGDM gradient is taken on clones made outside it.
    """

    def __init__(
        self,
        noise_model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
        alphas_cumprod: torch.Tensor,
        target: torch.Tensor,
        weights: torch.Tensor,
        method: GuidanceMethod = "replace",
        max_guidance: float = 5.0,
        steps: int = 1,
    ) -> None:
        if method not in ("pigdm", "replace"):
            raise ValueError(f"unknown guidance method {method!r}; choose 'pigdm' or 'replace'")
        self.noise_model = noise_model
        self.alphas_cumprod = alphas_cumprod
        self.target = target
        self.weights = weights[None, :, None]  # (1, Tp, 1)
        self.step_weights = 1.0 - (1.0 - self.weights).clamp(min=0.0) ** (1.0 / steps)
        self.method = method
        self.max_guidance = max_guidance

    def __call__(
        self, noisy_actions: torch.Tensor, timesteps: torch.Tensor, global_cond: torch.Tensor
    ) -> torch.Tensor:
        ab = self.alphas_cumprod[timesteps.long()].to(noisy_actions.dtype)
        ab = ab.reshape(ab.shape + (1,) * (noisy_actions.dim() - ab.dim()))  # (B, 1, 1)
        sqrt_ab, sqrt_1m = ab.sqrt(), (1.0 - ab).sqrt()
        if self.method == "replace":
            eps = self.noise_model(noisy_actions, timesteps, global_cond)
            x0 = (noisy_actions - sqrt_1m * eps) / sqrt_ab
            x0 = x0 + self.step_weights * (self.target - x0)
            return (noisy_actions - sqrt_ab * x0) / sqrt_1m
        with torch.inference_mode(False), torch.enable_grad():
            x = noisy_actions.clone().requires_grad_(True)
            eps = self.noise_model(x, timesteps.clone(), global_cond.clone())
            x0 = (x - sqrt_1m.clone() * eps) / sqrt_ab.clone()
            residual = self.weights * (self.target.clone() - x0.detach())  # W ⊙ (Y − x̂0)
            (vjp,) = torch.autograd.grad(x0, x, grad_outputs=residual)
        scale = torch.clamp(1.0 / (1.0 - ab), max=self.max_guidance)
        return eps.detach() - sqrt_1m * scale * vjp


@runtime_checkable
class PrefixRollout(Protocol):
    """A rollout whose sampler takes a guided prefix (the hook later samplers implement)."""

    def predict_action_chunk_with_prefix(
        self, obs: Observation, prefix: ActionPrefix
    ) -> np.ndarray: ...


PrefixPredictor = Callable[[Observation, ActionPrefix], np.ndarray]


def prefix_predictor(
    rollout: Rollout, method: GuidanceMethod = "replace", max_guidance: float = 5.0
) -> PrefixPredictor:
    """``(obs, prefix) -> chunk (B, Tp, Da)`` for ``rollout``; a clear error if it has none."""
    if isinstance(rollout, PrefixRollout):
        return rollout.predict_action_chunk_with_prefix
    from robodistill.diffusion.policy import DiffusionRollout

    if isinstance(rollout, DiffusionRollout):
        return lambda obs, prefix: _diffusion_with_prefix(
            rollout, obs, prefix, method, max_guidance
        )
    raise ValueError(
        f"{type(rollout).__name__} cannot sample a chunk with a guided prefix, so real-time "
        "chunking is unavailable for it; use --transition weighted_average (or latest_only), "
        "or give the rollout predict_action_chunk_with_prefix (robodistill.runtime.rtc)"
    )


def _diffusion_with_prefix(
    rollout, obs: Observation, prefix: ActionPrefix, method: GuidanceMethod, max_guidance: float
) -> np.ndarray:
    """RTC for diffusion rollouts: their DDPM/DDIM sampler with :class:`PrefixGuidedNoiseModel`
    in place of ε_θ for this chunk (``DiffusionRollout.predict_guided_chunk``)."""
    from robodistill.features import ACTION

    policy = rollout.policy
    scheduler = getattr(policy.sampler, "scheduler", None)
    if scheduler is None:
        raise ValueError(
            f"real-time chunking guides a DDPM/DDIM sampler, but this policy samples with "
            f"{type(policy.sampler).__name__}; use --transition weighted_average (or latest_only)"
        )
    target = policy.normalizer.normalize(ACTION, torch.as_tensor(prefix.actions))

    def guide(unet):
        return PrefixGuidedNoiseModel(
            unet,
            scheduler.alphas_cumprod,
            target.expand(rollout.num_envs, *target.shape),
            torch.as_tensor(prefix.weights),
            method,
            max_guidance,
            steps=len(scheduler.timesteps),
        )

    return rollout.predict_guided_chunk(obs, guide)
