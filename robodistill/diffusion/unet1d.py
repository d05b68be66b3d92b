"""ConditionalUnet1D: the CNN noise model ε_θ(a_k, k, o) of Diffusion Policy.

Chi et al., "Diffusion Policy: Visuomotor Policy Learning via Action Diffusion" (RSS 2023),
Sec. III-B: a 1-D temporal U-Net over the action sequence a_k (B, Tp, Da). Every residual
block is conditioned by FiLM (Perez et al., 2018) on ``[emb(k), o]``, the sinusoidal
diffusion-step embedding concatenated with the flattened observation features of To steps:
``h ← γ(c) ⊙ h + β(c)`` per channel.

γ and β depend only on (k, o), never on a_k, so a sampler whose steps k_1..k_K are known in
advance computes every block's FiLM for all K steps in one batched pass per chunk
(:meth:`ConditionalUnet1D.film_schedule`) instead of K small passes; each denoising step then
runs only the convolutions (:meth:`ConditionalUnet1D.modulated`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn


class SinusoidalPosEmb(nn.Module):
    """Transformer-style embedding of the diffusion step k: [sin(k ω_i), cos(k ω_i)]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half) / (half - 1))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, k: torch.Tensor) -> torch.Tensor:
        angles = k.float()[:, None] * self.freqs[None, :]  # (B, dim/2)
        return torch.cat([angles.sin(), angles.cos()], dim=-1)  # (B, dim)


class Conv1d(nn.Conv1d):
    """``nn.Conv1d`` (same parameters) that runs inference as one im2col GEMM.

    For the small inputs of a control step (batch 1-8, Tp = 16) PyTorch's CPU dispatcher
    picks its generic ``slow_conv2d`` kernel, which spends most of a denoising step in the
    convolutions; unfolding the (zero-padded) sequence into (B·T', C·k) columns and
    multiplying by the (C_out, C·k) weight once is the same sum, 1.65x faster per push U-Net
    call at batch 1 and 1.2x at batch 8 (measured on a 2-core CPU). Larger batches (oneDNN
    wins from 16 on) and training keep PyTorch's kernel. Only zero padding, dilation 1 and
    one group, as the U-Net uses.
    """

    gemm_max_batch = 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.shape[0] > self.gemm_max_batch:
            return super().forward(x)
        (k,), (stride,), (pad,) = self.kernel_size, self.stride, self.padding
        batch, channels, _ = x.shape
        padded = nn.functional.pad(x, (pad, pad)) if pad else x
        cols = padded.unfold(2, k, stride)  # (B, C, T', k)
        steps = cols.shape[2]
        cols = cols.permute(0, 2, 1, 3).reshape(batch * steps, channels * k)
        weight = self.weight.reshape(self.out_channels, channels * k)
        out = (
            torch.addmm(self.bias, cols, weight.t()) if self.bias is not None else cols @ weight.t()
        )
        return out.reshape(batch, steps, self.out_channels).transpose(1, 2)  # (B, C_out, T')


class Conv1dBlock(nn.Sequential):
    """Conv1d -> GroupNorm -> Mish, length-preserving."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, n_groups: int) -> None:
        super().__init__(
            Conv1d(in_ch, out_ch, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, out_ch),
            nn.Mish(),
        )


class ConditionalResidualBlock1D(nn.Module):
    """Two conv blocks with FiLM between them and a residual connection."""

    def __init__(
        self, in_ch: int, out_ch: int, cond_dim: int, kernel_size: int, n_groups: int
    ) -> None:
        super().__init__()
        self.block1 = Conv1dBlock(in_ch, out_ch, kernel_size, n_groups)
        self.block2 = Conv1dBlock(out_ch, out_ch, kernel_size, n_groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * out_ch))
        self.residual = Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        # x: (B, C_in, T), cond: (B, cond_dim)
        return self.modulated(x, self.film(cond)[:, :, None])

    def modulated(self, x: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """The block with its FiLM output (B, 2 C_out, 1) given: [γ; β] stacked on channels."""
        h = self.block1(x)  # (B, C_out, T)
        scale, bias = film.chunk(2, dim=1)  # 2 x (B, C_out, 1)
        h = self.block2(scale * h + bias)
        return h + self.residual(x)


class ConditionalUnet1D(nn.Module):
    """ε_θ(a_k, k, o): (B, Tp, Da) noisy actions -> (B, Tp, Da) predicted noise.

    Levels follow ``down_dims``; the sequence is halved after every level but the last and
    doubled back on the way up, so Tp must be divisible by ``2 ** (len(down_dims) - 1)``.
    """

    def __init__(
        self,
        action_dim: int,
        global_cond_dim: int,
        down_dims: tuple[int, ...],
        diffusion_step_embed_dim: int,
        kernel_size: int,
        n_groups: int,
    ) -> None:
        super().__init__()
        dsed = diffusion_step_embed_dim
        self.step_encoder = nn.Sequential(
            SinusoidalPosEmb(dsed), nn.Linear(dsed, 4 * dsed), nn.Mish(), nn.Linear(4 * dsed, dsed)
        )
        cond_dim = dsed + global_cond_dim

        def block(c_in: int, c_out: int) -> ConditionalResidualBlock1D:
            return ConditionalResidualBlock1D(c_in, c_out, cond_dim, kernel_size, n_groups)

        dims = [action_dim, *down_dims]
        in_out = list(zip(dims[:-1], dims[1:], strict=True))
        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(in_out):
            is_last = i == len(in_out) - 1
            resample = nn.Identity() if is_last else Conv1d(c_out, c_out, 3, stride=2, padding=1)
            self.down.append(nn.ModuleList([block(c_in, c_out), block(c_out, c_out), resample]))
        self.mid = nn.ModuleList([block(down_dims[-1], down_dims[-1]) for _ in range(2)])
        self.up = nn.ModuleList()
        for c_in, c_out in reversed(in_out[1:]):
            upsample = nn.ConvTranspose1d(c_in, c_in, 4, stride=2, padding=1)
            self.up.append(nn.ModuleList([block(2 * c_out, c_in), block(c_in, c_in), upsample]))
        self.final = nn.Sequential(
            Conv1dBlock(down_dims[0], down_dims[0], kernel_size, n_groups),
            Conv1d(down_dims[0], action_dim, 1),
        )

        self.blocks = [b for level in (*self.down, self.mid, *self.up) for b in level[:2]]
        """Every FiLM-conditioned block, in the order :meth:`modulated` runs them."""

    def forward(
        self, noisy_actions: torch.Tensor, timesteps: torch.Tensor, global_cond: torch.Tensor
    ) -> torch.Tensor:
        """noisy_actions (B, Tp, Da), timesteps (B,) int, global_cond (B, C) -> (B, Tp, Da)."""
        cond = torch.cat([self.step_encoder(timesteps), global_cond], dim=-1)  # (B, cond_dim)
        return self.modulated(
            noisy_actions, [block.film(cond)[:, :, None] for block in self.blocks]
        )

    def film_schedule(
        self, timesteps: torch.Tensor, global_cond: torch.Tensor
    ) -> list[list[torch.Tensor]]:
        """FiLM outputs of every block for each of K steps: ``[step][block] -> (B, 2C, 1)``.

        timesteps (K,) and global_cond (B, C); one batched pass over K·B rows per block.
        ``modulated(a_k, film_schedule(ks, o)[i])`` equals ``forward(a_k, ks[i], o)``.
        """
        n_steps, batch = timesteps.shape[0], global_cond.shape[0]
        step_emb = self.step_encoder(timesteps)  # (K, dsed)
        cond = torch.cat(
            [
                step_emb[:, None].expand(n_steps, batch, -1),
                global_cond[None].expand(n_steps, batch, -1),
            ],
            dim=-1,
        )  # (K, B, cond_dim)
        per_block = [block.film(cond)[..., None].unbind(0) for block in self.blocks]
        return [list(films) for films in zip(*per_block, strict=True)]

    def modulated(self, noisy_actions: torch.Tensor, films: Sequence[torch.Tensor]) -> torch.Tensor:
        """The U-Net given every block's FiLM output (see :meth:`film_schedule`)."""
        film: Iterator[torch.Tensor] = iter(films)
        x = noisy_actions.transpose(1, 2)  # (B, Da, Tp): convolve over time
        skips = []
        for res1, res2, downsample in self.down:
            x = res2.modulated(res1.modulated(x, next(film)), next(film))
            skips.append(x)
            x = downsample(x)
        for res in self.mid:
            x = res.modulated(x, next(film))
        for res1, res2, upsample in self.up:
            x = torch.cat([x, skips.pop()], dim=1)  # (B, 2C, T'): skip connection
            x = upsample(res2.modulated(res1.modulated(x, next(film)), next(film)))
        return self.final(x).transpose(1, 2)  # (B, Tp, Da)
