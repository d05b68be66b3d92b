"""The bidirectional video teacher: rectified-flow training and many-step Euler sampling.

Objective (rectified flow / flow matching; Liu et al. 2023, Lipman et al. 2023, with SD3's
logit-normal t of Esser et al. 2024), over the non-context frames f >= C of a clip::

    L = E_{x_0, c, t ~ logitN(0,1), ε} || v_θ(x_t, t, c) - (ε - x_0) ||²,
    x_t = (1 - t) x_0 + t ε,   context frames at t = 0 (given clean).

Sampling integrates dx/dt = v_θ from t = 1 to 0 with N Euler steps, all frames at once
(every frame attends to every frame). Run with ``robodistill video train-teacher``; re-running
the same command resumes from ``<out>/checkpoints/last``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel

from robodistill.checkpoint import read_checkpoint
from robodistill.training.checkpointing import (
    capture_training_state,
    check_resumable,
    ema_weights,
    last_checkpoint,
    restore_training_state,
    save_run_checkpoint,
)
from robodistill.training.ddp import DistInfo
from robodistill.training.run_log import RunLog
from robodistill.training.seeding import seed_everything
from robodistill.training.update import update
from robodistill.video.checkpoints import TEACHER, feature_shapes
from robodistill.video.config import VideoTeacherConfig
from robodistill.video.data import CondNormalizer, VideoClips
from robodistill.video.flow import add_noise
from robodistill.video.model import VideoDiT


def frame_noise_levels(t: torch.Tensor, frames: int, context_frames: int) -> torch.Tensor:
    """(B, F) noise levels: ``t`` (B,) on generated frames, 0 on the C context frames."""
    levels = t[:, None].expand(-1, frames).clone()
    levels[:, :context_frames] = 0.0
    return levels


def flow_matching_loss(
    model: VideoDiT,
    x0: torch.Tensor,
    cond: torch.Tensor,
    context_frames: int,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """L = E ||v_θ(x_t, t, c) - (ε - x_0)||² over frames f >= C (rectified flow).

    x0 (B, F, 3, H, W) clean clips, cond (B, F, Dc); t ~ logit-normal(0, 1) per clip. Also the
    fake-score loss of DMD, where x0 are the student's samples.
    """
    bsz, n_frames = x0.shape[:2]
    t = frame_noise_levels(torch.sigmoid(torch.randn(bsz)), n_frames, context_frames)  # (B, F)
    noise = torch.randn_like(x0)
    v = model(add_noise(x0, noise, t), t, cond, mask)
    return (v - (noise - x0))[:, context_frames:].pow(2).mean()


@torch.no_grad()
def sample_teacher(
    model: VideoDiT,
    context: torch.Tensor,
    cond: torch.Tensor,
    steps: int,
    noise: torch.Tensor | None = None,
    record: tuple[float, ...] = (),
) -> tuple[torch.Tensor, dict[float, torch.Tensor]]:
    """Sample a clip with N Euler steps of the flow ODE from t = 1 to 0.

    context (B, C, 3, H, W) clean frames; cond (B, F, Dc) normalized conditions of all F
    frames; noise (B, F - C, 3, H, W) the starting point (drawn when None). Returns the clip
    (B, F, 3, H, W) and the ODE states {t: x_t (B, F, 3, H, W)} at the noise levels in
    ``record`` that lie on the Euler grid (the ODE pairs of CausVid).
    """
    bsz, n_ctx = context.shape[:2]
    n_frames = cond.shape[1]
    if noise is None:
        noise = torch.randn(bsz, n_frames - n_ctx, *context.shape[2:])
    x = torch.cat([context, noise], dim=1)  # (B, F, 3, H, W)
    grid = torch.linspace(1.0, 0.0, steps + 1)
    wanted = {round(t, 6) for t in record}
    states = {}
    for i in range(steps):
        t = grid[i].item()
        if round(t, 6) in wanted:
            states[t] = x.clone()
        v = model(x, frame_noise_levels(torch.full((bsz,), t), n_frames, n_ctx), cond)
        x = torch.cat([context, x[:, n_ctx:] + (grid[i + 1] - grid[i]) * v[:, n_ctx:]], dim=1)
    missing = wanted - {round(t, 6) for t in states}
    if missing:
        raise ValueError(
            f"noise levels {sorted(missing)} are not on the {steps}-step Euler grid; use a "
            "number of teacher steps that is a multiple of the student's grid"
        )
    return x, states


def train_teacher(
    config: VideoTeacherConfig,
    data_root: str | Path,
    out: str | Path,
    *,
    stop_after: int | None = None,
) -> VideoDiT:
    """Train (or resume) the teacher run in ``out``; returns the online model.

    ``stop_after`` ends the run after that many total steps with a checkpoint, as if killed.
    """
    tc, mc = config.train, config.model
    out = Path(out)
    seed_everything(tc.seed)

    # ---- data: windows of T frames, the first C clean
    clips = VideoClips(data_root, "train")
    if clips.source != config.source:
        raise ValueError(
            f"{data_root} holds {clips.source!r} clips but the recipe is for {config.source!r}; "
            "pass the matching --root or recipe"
        )
    if clips.meta["frame_size"] != mc.frame_size:
        raise ValueError(
            f"{data_root} has {clips.meta['frame_size']}px frames, the recipe model.frame_size "
            f"is {mc.frame_size}: make clips with --size {mc.frame_size} or change the recipe"
        )
    if clips.source == "avatar" and mc.context_frames != 1:
        raise ValueError("avatar recipes need model.context_frames = 1 (the reference frame)")
    normalizer = CondNormalizer.fit(clips.arrays["cond"])
    fingerprint = clips.fingerprint()

    # ---- model, optimizer, LR schedule, EMA
    model = VideoDiT(mc, cond_dim=clips.meta["cond_dim"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    lr_scheduler = get_cosine_schedule_with_warmup(optimizer, tc.warmup_steps, tc.steps)
    ema = EMAModel(
        model.parameters(), decay=tc.ema_max_decay, use_ema_warmup=True, power=tc.ema_power
    )
    dist_info = DistInfo()

    # ---- resume
    start_step = 0
    resume_from = last_checkpoint(out)
    if resume_from is not None:
        ckpt = read_checkpoint(resume_from)
        check_resumable(ckpt, dataclasses.asdict(config), fingerprint)
        start_step, _ = restore_training_state(ckpt, model, optimizer, lr_scheduler, ema, dist_info)
    end_step = tc.steps if stop_after is None else min(stop_after, tc.steps)
    log = RunLog(out, start_step, end_step)
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        f"{'resuming at step ' + str(start_step) if start_step else 'starting'}: video teacher "
        f"({config.source}), {len(clips)} clips from {data_root}, {n_params / 1e6:.2f}M params"
    )

    def save(step: int) -> None:
        save_run_checkpoint(
            out,
            step,
            tc.keep_checkpoints,
            method=TEACHER,
            config=config,
            state_dict=ema_weights(model, ema),
            task=config.source,
            obs_mode="video",
            feature_shapes=feature_shapes(model),
            normalization=normalizer.to_dict(),
            dataset=fingerprint,
            training_state=capture_training_state(
                step, model, optimizer, lr_scheduler, ema, dist_info
            ),
        )
        log.plot()
        log.info(f"checkpoint at step {step} -> {out}")

    # ---- the loop
    model.train()
    loss_sum, loss_count = 0.0, 0
    for step in range(start_step, end_step):
        rng = np.random.default_rng([tc.seed, step])  # batch of step k: a function of (seed, k)
        x0, cond = clips.sample(rng, tc.batch_size, mc.clip_frames)  # (B,T,3,H,W), (B,T,Dc)
        loss = flow_matching_loss(model, x0, normalizer(cond), mc.context_frames)
        loss_value, grad_norm = update(
            loss, model.parameters(), optimizer, lr_scheduler, ema, tc.grad_clip_norm, step
        )

        done = step + 1
        loss_sum, loss_count = loss_sum + loss_value, loss_count + 1
        log.advance()
        if done % tc.log_every == 0 or done == end_step:
            log.metrics(
                done,
                loss=loss_sum / loss_count,
                lr=lr_scheduler.get_last_lr()[0],
                grad_norm=grad_norm,
            )
            loss_sum, loss_count = 0.0, 0
        if done % tc.checkpoint_every == 0 or done == end_step:
            save(done)
    log.info(f"done at step {max(start_step, end_step)}; teacher in {out}")
    log.close()
    return model
