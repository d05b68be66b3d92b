"""Streaming generation with the causal student: one block of frames per block of conditions.

The student denoises a block of B frames in a few steps while attending to a KV cache of
finished frames, then writes the clean block into the cache (CausVid) - in the same pass as
the next block's first denoising step, so a 1-step block costs one pass. The cache rolls: the
first ``sink_frames`` frames of a stream stay forever (attention sinks; for the avatar the
reference frame - LiveTalk's identity anchor) and only the last ``window_frames`` generated
frames are kept, so every frame costs the same however long the stream runs. The first
block may use more denoising steps than the rest (First-Frame Enhancement).

Python use (a :class:`VideoStream` holds one stream's state; make one per stream)::

    student = load_video_checkpoint("runs/vid_student", STUDENT)
    stream = VideoStream(student, context_frames)        # (C, H, W, 3) uint8
    for chunk in conditions:                             # actions (B, Da) / audio (B*spf,)
        frames = stream.step(chunk)                      # (B, H, W, 3) uint8
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from robodistill.video.checkpoints import VideoCheckpoint
from robodistill.video.config import StreamConfig, VideoStudentConfig
from robodistill.video.data import (
    AUDIO_SAMPLE_RATE,
    SAMPLES_PER_FRAME,
    audio_features,
    frames_to_tensor,
    tensor_to_frames,
)
from robodistill.video.flow import add_noise, predict_x0, student_timesteps
from robodistill.video.model import KVCache, VideoDiT


def denoise_block(
    model: VideoDiT,
    cache: KVCache,
    noise: torch.Tensor,
    cond: torch.Tensor,
    timesteps: Sequence[float],
    grad_last: bool = False,
    generator: torch.Generator | None = None,
    pending: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Few-step sampling of one block (B, Fb, 3, H, W) from ``noise`` given the cache.

    At each level t_i: x̂_0 = x - t_i v(x, t_i); then x = (1 - t_{i+1}) x̂_0 + t_{i+1} ε with
    fresh ε (CausVid / DMD's multi-step generator). Returns the last x̂_0; only the last step
    keeps its graph when ``grad_last`` (Self Forcing's truncated gradient). ``pending`` =
    (frames, cond) of finished frames not yet in the cache: the first pass writes them
    (inference only: their keys must not carry a graph).
    """
    bsz, n_block = noise.shape[:2]
    x = noise
    for i, t in enumerate(timesteps):
        last = i == len(timesteps) - 1
        levels = torch.full((bsz, n_block), t)
        with torch.set_grad_enabled(grad_last and last):
            if pending is None:
                v = model.forward_cached(x, levels, cond, cache)
            else:
                v = _fused_pass(model, cache, pending, x, levels, cond)
                pending = None
            x0 = predict_x0(x, levels, v)
        if not last:
            eps = torch.randn(x0.shape, generator=generator)
            x = add_noise(x0.detach(), eps, torch.full((bsz, n_block), timesteps[i + 1]))
    return x0


def _fused_pass(
    model: VideoDiT,
    cache: KVCache,
    pending: tuple[torch.Tensor, torch.Tensor],
    x: torch.Tensor,
    levels: torch.Tensor,
    cond: torch.Tensor,
) -> torch.Tensor:
    """Write the pending finished frames and denoise x in one pass; returns v of x."""
    frames, frames_cond = pending
    n_done = frames.shape[1]
    v = model.forward_cached(
        torch.cat([frames, x], dim=1),
        torch.cat([torch.zeros(frames.shape[:2]), levels], dim=1),
        torch.cat([frames_cond, cond], dim=1),
        cache,
        write_frames=n_done,
    )
    return v[:, n_done:]


@torch.no_grad()
def write_block(model: VideoDiT, cache: KVCache, frames: torch.Tensor, cond: torch.Tensor) -> None:
    """Append clean frames (B, Fb, 3, H, W) to the cache (a pass at t = 0)."""
    model.forward_cached(
        frames.detach(), torch.zeros(frames.shape[:2]), cond, cache, write_frames=frames.shape[1]
    )


def rollout(
    model: VideoDiT,
    context: torch.Tensor,
    cond: torch.Tensor,
    block_frames: int,
    timesteps: Sequence[Sequence[float]],
    cache: KVCache | None = None,
    grad: bool = False,
) -> torch.Tensor:
    """Generate frames block by block, each conditioned on the model's own past.

    context (B, C, 3, H, W) clean; cond (B, F, Dc) normalized, F - C a multiple of B;
    ``timesteps[b]`` the noise levels of block b. ``cache`` defaults to one holding every
    frame (F <= clip_frames); pass a rolling one for longer videos. Returns (B, F, 3, H, W).
    """
    n_ctx = context.shape[1]
    n_frames = cond.shape[1]
    n_new = n_frames - n_ctx
    if n_new % block_frames or len(timesteps) != n_new // block_frames:
        raise ValueError(
            f"{n_new} frames to generate is not {len(timesteps)} blocks of {block_frames}"
        )
    cache = model.new_cache(0, n_frames) if cache is None else cache
    write_block(model, cache, context, cond[:, :n_ctx])
    frames = [context]
    for b, levels in enumerate(timesteps):
        block_cond = cond[
            :, n_ctx + b * block_frames : n_ctx + (b + 1) * block_frames
        ]  # (B, Fb, Dc)
        noise = torch.randn(context.shape[0], block_frames, *context.shape[2:])
        x0 = denoise_block(model, cache, noise, block_cond, levels, grad_last=grad)
        write_block(model, cache, x0, block_cond)
        frames.append(x0)
    return torch.cat(frames, dim=1)


def block_schedule(
    config: VideoStudentConfig, blocks: int, stream: StreamConfig
) -> list[list[float]]:
    """Noise levels per block: First-Frame Enhancement's longer first block, then ``steps``."""
    first = student_timesteps(config.student_steps, stream.first_block_steps)
    rest = student_timesteps(config.student_steps, stream.steps)
    return [first] + [rest] * (blocks - 1)


def stream_cache(model: VideoDiT, block_frames: int, stream: StreamConfig, sink: bool) -> KVCache:
    """A rolling cache of S sink + W window frames (without sink: S + W window frames)."""
    limit = model.config.clip_frames - block_frames
    if stream.sink_frames + stream.window_frames > limit:
        raise ValueError(
            f"a cache of {stream.sink_frames} sink + {stream.window_frames} window frames plus a "
            f"block of {block_frames} exceeds the {model.config.clip_frames} frames the student "
            f"was trained on: lower window_frames to <= {limit - stream.sink_frames}"
        )
    if sink:
        return model.new_cache(stream.sink_frames, stream.window_frames)
    return model.new_cache(0, stream.sink_frames + stream.window_frames)


class VideoStream:
    """The state of one stream: rolling KV cache, block counter. The caller owns it.

    ``context`` are the C first frames (H, W, 3) uint8 (world model: observed frames; avatar:
    the reference frame), written into the cache at once. ``step(condition)`` takes one block's
    conditions - actions (B, Da) for the world model, B * samples_per_frame audio samples
    for the avatar - and returns the block's B frames (B, H, W, 3) uint8.
    """

    def __init__(
        self,
        student: VideoCheckpoint,
        context: np.ndarray,
        stream: StreamConfig | None = None,
        sink: bool = True,
        seed: int = 0,
    ) -> None:
        config = student.config
        assert isinstance(config, VideoStudentConfig)
        self.student = student
        self.config = config
        self.stream = stream or config.stream
        self.block_frames = config.block_frames
        self.model = student.model
        mc = self.model.config
        self.cache = stream_cache(self.model, self.block_frames, self.stream, sink)
        context = np.asarray(context)
        expected = (mc.context_frames, mc.frame_size, mc.frame_size, 3)
        if context.shape != expected:
            raise ValueError(f"context must be {expected} uint8 frames, got {context.shape}")
        if mc.context_frames > self.cache.capacity:
            raise ValueError(
                f"{mc.context_frames} context frames do not fit a cache of {self.cache.capacity}"
                " frames: raise sink_frames or window_frames"
            )
        self.generator = torch.Generator().manual_seed(seed)
        self.blocks_done = 0
        zeros = torch.zeros(1, mc.context_frames, self.model.cond_dim)
        self.pending = frames_to_tensor(context)[None], zeros
        """Finished frames (1, F, 3, H, W) and their conditions, written by the next step."""

    def condition_tensor(self, condition: np.ndarray) -> torch.Tensor:
        """Raw conditions of one block -> normalized (1, B, Dc); wrong shapes are errors."""
        condition = np.asarray(condition, dtype=np.float32)
        block = self.block_frames
        if self.config.source == "avatar":
            samples = block * SAMPLES_PER_FRAME
            if condition.shape != (samples,):
                raise ValueError(
                    f"an avatar block of {block} frames needs {samples} audio samples "
                    f"({SAMPLES_PER_FRAME} per frame at {AUDIO_SAMPLE_RATE} Hz), got shape "
                    f"{condition.shape}: resample to {AUDIO_SAMPLE_RATE} Hz and cut the audio "
                    f"into chunks of {samples}"
                )
            condition = audio_features(condition)  # (B, N_MELS)
        elif condition.shape != (block, self.model.cond_dim):
            raise ValueError(
                f"a block of {block} frames needs actions of shape "
                f"({block}, {self.model.cond_dim}), got {condition.shape}"
            )
        return self.student.normalizer(torch.from_numpy(condition))[None]

    @torch.inference_mode()
    def step(self, condition: np.ndarray) -> np.ndarray:
        """Generate the next block of frames (B, H, W, 3) uint8 from its conditions."""
        cond = self.condition_tensor(condition)
        steps = self.stream.first_block_steps if self.blocks_done == 0 else self.stream.steps
        levels = student_timesteps(self.config.student_steps, steps)
        s = self.model.config.frame_size
        noise = torch.randn(1, self.block_frames, 3, s, s, generator=self.generator)
        x0 = denoise_block(
            self.model,
            self.cache,
            noise,
            cond,
            levels,
            generator=self.generator,
            pending=self.pending,
        )
        self.pending = x0, cond
        self.blocks_done += 1
        return tensor_to_frames(x0[0])


def stream_frames(
    student: VideoCheckpoint,
    context: np.ndarray,
    conditions: Iterable[np.ndarray],
    stream: StreamConfig | None = None,
    sink: bool = True,
    seed: int = 0,
) -> Iterator[np.ndarray]:
    """Generator API: yields (B, H, W, 3) uint8 frames as each block's conditions arrive."""
    state = VideoStream(student, context, stream, sink=sink, seed=seed)
    for condition in conditions:
        yield state.step(condition)
