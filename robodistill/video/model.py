"""Spatio-temporal diffusion transformer over frame patches, with a block-causal KV cache.

Tensor contract (every model in :mod:`robodistill.video`)::

    x (B, F, 3, H, W) noisy frames in [-1, 1] scale, t (B, F) noise level per frame,
    cond (B, F, Dc) normalized conditions  ->  v (B, F, 3, H, W) flow velocity

A frame is cut into N = (H/p)^2 patches; every patch is a token carrying a learned spatial
embedding, and attention runs jointly over all tokens of all frames (full 3-D attention) with
a rotary embedding of the frame index (time) on queries and keys. Each frame's noise level and
condition enter through adaLN-zero modulation (Peebles & Xie, DiT, 2023).

The network predicts the clean frames x̂_0 and returns the velocity v = (x_t - x̂_0) / t
(t clamped at ``MIN_T``): a token of 8x8x3 = 192 values cannot carry per-pixel noise through
a 96-wide transformer, but it can carry a smooth image (x-prediction, as in Li & He 2025,
"Back to Basics: Let Denoising Generative Models Denoise"); x_t supplies the noise.

* Teacher (bidirectional): every frame attends to every frame (``mask=None``).
* Student (block-causal, CausVid): frames are grouped into blocks - the C context frames form
  block 0, then blocks of B frames - and a token attends to its own block and earlier ones
  (:func:`block_causal_mask`). :class:`KVCache` holds the keys and values of finished
  (clean, t = 0) blocks so a new block costs one pass over its own tokens. When streaming,
  the pass that writes finished block b into the cache is fused with the first denoising
  pass of block b + 1 (``forward_cached(..., write_frames=B)``): one pass per block saved,
  with the same outputs as two passes.

The cache stores keys *before* the rotary embedding and assigns positions at attention time:
cached frames get positions 0, 1, ..., in cache order, the new block the next ones. Before
anything is evicted these are the absolute frame indices, so cached inference equals the
full block-causal forward; once the cache rolls (sink frames + a window of recent frames,
StreamingLLM-style) positions stay inside the trained range whatever the stream's length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from robodistill.video.config import VideoModelConfig

MIN_T = 0.01
"""Smallest t in v = (x_t - x̂_0) / t; below it v is only a rescaled x_t - x̂_0."""


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding (..., dim) of noise levels t (...) in [0, 1]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, dtype=torch.float32) / half)
    angles = 1000.0 * t[..., None].float() * freqs  # (..., half)
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


Rotary = tuple[torch.Tensor, torch.Tensor]
"""(cos, sin), each (L, hs/2): the rotary angles of L tokens."""


def rotary_table(max_positions: int, head_size: int) -> Rotary:
    """cos/sin (max_positions, hs/2) of the rotary time embedding (base 100: few frames)."""
    half = head_size // 2
    freqs = torch.exp(-math.log(100.0) * torch.arange(half, dtype=torch.float32) / half)
    angles = torch.arange(max_positions, dtype=torch.float32)[:, None] * freqs  # (P, hs/2)
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, rotary: Rotary) -> torch.Tensor:
    """Apply the rotary angles (L, hs/2) of L tokens to x (B, nh, L, hs)."""
    cos, sin = rotary
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def block_ids(frames: int, context_frames: int, block_frames: int) -> torch.Tensor:
    """(F,) block index of every frame: 0 for the context, then 1 + (f - C) // B."""
    f = torch.arange(frames)
    return torch.where(f < context_frames, 0, 1 + (f - context_frames) // block_frames)


def block_causal_mask(frames: int, context_frames: int, block_frames: int) -> torch.Tensor:
    """(F, F) bool frame mask, True where frame q may attend frame k (k's block <= q's)."""
    ids = block_ids(frames, context_frames, block_frames)
    return ids[None, :] <= ids[:, None]


@dataclass
class KVCache:
    """Keys/values of finished frames for every layer, with an optional rolling window.

    Holds at most ``sink_frames + window_frames`` frames: the first ``sink_frames`` frames ever
    written stay (attention sinks), the rest is a window of the most recent frames. Owned by
    one stream (or one batch of training rollouts); never shared.
    """

    depth: int
    tokens_per_frame: int
    sink_frames: int
    window_frames: int
    keys: list[torch.Tensor | None] = field(default_factory=list)
    values: list[torch.Tensor | None] = field(default_factory=list)
    frames: int = 0
    """Frames currently held."""
    written: int = 0
    """Frames written over the cache's life (held + evicted)."""

    def __post_init__(self) -> None:
        self.keys = [None] * self.depth
        self.values = [None] * self.depth

    @property
    def capacity(self) -> int:
        return self.sink_frames + self.window_frames

    def past(self, layer: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Cached (B, nh, frames * N, hs) keys and values of ``layer`` (None when empty)."""
        if self.keys[layer] is None:
            return None
        return self.keys[layer], self.values[layer]

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Add the un-rotated keys/values (B, nh, L, hs) of new frames to ``layer``."""
        old = self.past(layer)
        self.keys[layer] = k if old is None else torch.cat([old[0], k], dim=2)
        self.values[layer] = v if old is None else torch.cat([old[1], v], dim=2)

    def make_room(self, new_frames: int) -> None:
        """Evict the oldest window frames so that ``new_frames`` more fit the capacity.

        Called before frames are written, so the written frames attend to the cache as it
        will be kept (sinks + the most recent frames) and every frame's keys stay as written.
        """
        sink = min(self.sink_frames, self.frames)
        excess = self.frames + new_frames - self.capacity
        if excess <= 0:
            return
        if new_frames > self.capacity - sink:
            raise ValueError(
                f"cannot write {new_frames} frames into a cache of {self.sink_frames} sink + "
                f"{self.window_frames} window frames: raise window_frames"
            )
        n = self.tokens_per_frame
        for layer in range(self.depth):
            for store in (self.keys, self.values):
                t = store[layer]
                store[layer] = torch.cat([t[:, :, : sink * n], t[:, :, (sink + excess) * n :]], 2)
        self.frames -= excess

    def commit(self, new_frames: int) -> None:
        """Account for frames appended to every layer (after :meth:`make_room`)."""
        self.frames += new_frames
        self.written += new_frames


class Attention(nn.Module):
    """Multi-head self-attention whose keys may be prefixed by cached ones."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        h: torch.Tensor,
        q_rot: Rotary,
        k_rot: Rotary,
        mask: torch.Tensor | None,
        past: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attend from h (B, L, D) to [past, h]; returns (out (B, L, D), k, v un-rotated)."""
        bsz, n_tok, width = h.shape
        qkv = self.qkv(h).view(bsz, n_tok, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, nh, L, hs)
        keys, values = k, v
        if past is not None:
            keys, values = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        y = F.scaled_dot_product_attention(
            rotate(q, q_rot), rotate(keys, k_rot), values, attn_mask=mask
        )  # (B, nh, L, hs)
        return self.proj(y.transpose(1, 2).reshape(bsz, n_tok, width)), k, v


class DiTBlock(nn.Module):
    """Pre-norm transformer block with adaLN-zero modulation by a per-frame vector."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU("tanh"), nn.Linear(hidden, dim))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(
        self,
        x: torch.Tensor,
        c: torch.Tensor,
        q_rot: Rotary,
        k_rot: Rotary,
        mask: torch.Tensor | None,
        past: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, F, N, D) tokens, c (B, F, D) frame vectors -> (x, k, v)."""
        bsz, n_frames, n_patch, width = x.shape
        mods = self.modulation(c)[:, :, None].chunk(6, dim=-1)  # 6 x (B, F, 1, D)
        shift1, scale1, gate1, shift2, scale2, gate2 = mods
        h = self.norm1(x) * (1 + scale1) + shift1
        a, k, v = self.attn(h.reshape(bsz, n_frames * n_patch, width), q_rot, k_rot, mask, past)
        x = x + gate1 * a.view(bsz, n_frames, n_patch, width)
        x = x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)
        return x, k, v


class VideoDiT(nn.Module):
    """The denoiser v_θ(x_t, t, c) of teacher, student and fake score (see the module doc)."""

    def __init__(self, config: VideoModelConfig, cond_dim: int) -> None:
        super().__init__()
        self.config = config
        self.cond_dim = cond_dim
        dim, p = config.dim, config.patch_size
        self.grid = config.frame_size // p
        self.tokens_per_frame = self.grid**2
        self.patch_embed = nn.Linear(3 * p * p, dim)
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, 1, self.tokens_per_frame, dim))
        self.t_embed = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.c_embed = nn.Sequential(nn.Linear(cond_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.blocks = nn.ModuleList(
            DiTBlock(dim, config.heads, config.mlp_ratio) for _ in range(config.depth)
        )
        self.final_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.head = nn.Linear(dim, 3 * p * p)
        for layer in (self.final_modulation[1], self.head):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        cos, sin = rotary_table(config.clip_frames, dim // config.heads)
        self.register_buffer("rotary_cos", cos, persistent=False)
        self.register_buffer("rotary_sin", sin, persistent=False)

    # ----- shapes ------------------------------------------------------------------------
    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F, 3, H, W) -> (B, F, N, 3 p p)."""
        bsz, n_frames = x.shape[:2]
        g, p = self.grid, self.config.patch_size
        x = x.view(bsz, n_frames, 3, g, p, g, p).permute(0, 1, 3, 5, 2, 4, 6)  # (B,F,g,g,3,p,p)
        return x.reshape(bsz, n_frames, g * g, 3 * p * p)

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, F, N, 3 p p) -> (B, F, 3, H, W)."""
        bsz, n_frames = tokens.shape[:2]
        g, p = self.grid, self.config.patch_size
        x = tokens.view(bsz, n_frames, g, g, 3, p, p).permute(
            0, 1, 4, 2, 5, 3, 6
        )  # (B,F,3,g,p,g,p)
        return x.reshape(bsz, n_frames, 3, g * p, g * p)

    def check_inputs(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> None:
        """Raise a ValueError naming the expected shapes if the inputs do not fit."""
        s = self.config.frame_size
        if x.ndim != 5 or tuple(x.shape[2:]) != (3, s, s):
            raise ValueError(f"frames must be (B, F, 3, {s}, {s}), got {tuple(x.shape)}")
        bsz, n_frames = x.shape[:2]
        if tuple(t.shape) != (bsz, n_frames):
            raise ValueError(
                f"noise levels t must be (B, F) = {(bsz, n_frames)}, got {tuple(t.shape)}"
            )
        if tuple(cond.shape) != (bsz, n_frames, self.cond_dim):
            raise ValueError(
                f"conditions must be (B, F, Dc) = {(bsz, n_frames, self.cond_dim)} (one row of "
                f"{self.cond_dim} per frame), got {tuple(cond.shape)}"
            )

    # ----- forward passes ----------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor,
        mask: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """v (B, F, 3, H, W) over a whole sequence; ``mask`` (F, F) frame mask (None: all).

        ``positions`` (F,) are the frames' time indices (default 0..F-1).
        """
        self.check_inputs(x, t, cond)
        n_frames = x.shape[1]
        if positions is None:
            if n_frames > self.config.clip_frames:
                raise ValueError(
                    f"{n_frames} frames exceed the {self.config.clip_frames} frames the model was "
                    "trained on; stream longer videos block by block (robodistill.video.stream)"
                )
            positions = torch.arange(n_frames)
        return self._run(x, t, cond, positions, mask, cache=None, write_frames=0)

    def forward_cached(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor,
        cache: KVCache,
        write_frames: int = 0,
    ) -> torch.Tensor:
        """v for frames x (B, F, 3, H, W) attending to ``cache`` and to one another.

        The first ``write_frames`` frames are finished ones (clean, t = 0, as CausVid writes
        them): they attend to the cache and to each other only, and their keys/values are
        appended to ``cache``. The remaining frames (a block being denoised) attend to the
        cache and to every frame of x. So one pass over [finished block b | noisy block b+1]
        equals the write pass of b followed by the first denoising pass of b+1.
        """
        self.check_inputs(x, t, cond)
        n_frames = x.shape[1]
        if not 0 <= write_frames <= n_frames:
            raise ValueError(f"write_frames must be in [0, {n_frames}], got {write_frames}")
        if write_frames:
            cache.make_room(write_frames)
        if cache.frames + n_frames > self.config.clip_frames:
            raise ValueError(
                f"the cache holds {cache.frames} frames and the block {n_frames}: more than the "
                f"{self.config.clip_frames} positions the model was trained on; use a cache with "
                f"sink_frames + window_frames <= {self.config.clip_frames - n_frames}"
            )
        positions = torch.arange(cache.frames, cache.frames + n_frames)
        frame_mask = None
        if 0 < write_frames < n_frames:
            frame_mask = torch.ones(n_frames, cache.frames + n_frames, dtype=torch.bool)
            frame_mask[:write_frames, cache.frames + write_frames :] = False
        return self._run(x, t, cond, positions, frame_mask, cache, write_frames)

    def _run(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor,
        positions: torch.Tensor,
        frame_mask: torch.Tensor | None,
        cache: KVCache | None,
        write_frames: int,
    ) -> torch.Tensor:
        """The pass; ``frame_mask`` (F, cached + F) over the cached and the given frames."""
        n_patch = self.tokens_per_frame
        h = self.patch_embed(self.patchify(x)) + self.pos_embed  # (B, F, N, D)
        c = self.t_embed(timestep_embedding(t, self.config.dim)) + self.c_embed(cond)  # (B,F,D)
        q_pos = positions.repeat_interleave(n_patch)  # (F N,) frame index of every token
        n_cached = cache.frames if cache is not None else 0
        k_pos = torch.cat([torch.arange(n_cached).repeat_interleave(n_patch), q_pos])  # (Fk N,)
        q_rot = self.rotary_cos[q_pos], self.rotary_sin[q_pos]  # 2 x (F N, hs/2)
        k_rot = self.rotary_cos[k_pos], self.rotary_sin[k_pos]
        mask = None
        if frame_mask is not None:
            mask = frame_mask.repeat_interleave(n_patch, 0)  # (F N, Fk)
            mask = mask.repeat_interleave(n_patch, 1)  # (F N, Fk N)
        written = write_frames * n_patch
        for i, block in enumerate(self.blocks):
            past = cache.past(i) if cache is not None else None
            h, k, v = block(h, c, q_rot, k_rot, mask, past)
            if written:
                cache.append(i, k[:, :, :written], v[:, :, :written])
        if written:
            cache.commit(write_frames)
        shift, scale = self.final_modulation(c)[:, :, None].chunk(2, dim=-1)  # (B, F, 1, D)
        out = self.head(self.final_norm(h) * (1 + scale) + shift)  # (B, F, N, 3 p p)
        x0 = self.unpatchify(out)  # (B, F, 3, H, W): the network predicts clean frames
        return (x - x0) / t.clamp_min(MIN_T)[:, :, None, None, None]  # v = (x_t - x̂_0) / t

    def new_cache(self, sink_frames: int, window_frames: int) -> KVCache:
        """An empty cache keeping ``sink_frames`` first frames + ``window_frames`` recent ones."""
        if sink_frames < 0 or window_frames < 0 or sink_frames + window_frames < 1:
            raise ValueError(
                f"a cache needs sink_frames >= 0, window_frames >= 0 and room for at least one "
                f"frame, got {sink_frames} and {window_frames}"
            )
        return KVCache(self.config.depth, self.tokens_per_frame, sink_frames, window_frames)
