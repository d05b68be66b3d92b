"""Train a Diffusion Policy teacher (Chi et al., RSS 2023) on a LeRobotDataset.

One function, top to bottom: data -> model -> optimizer/EMA -> resume -> loop -> checkpoint.
Plumbing (seeding, logging, checkpoint/resume, DDP) comes from :mod:`robodistill.training`.
Each step minimizes L = E ||ε − ε_θ(√ᾱ_k a⁰ + √(1−ᾱ_k) ε, k, O)||² (see
:func:`robodistill.diffusion.policy.diffusion_loss`) with AdamW, a cosine learning rate
with linear warm-up, and an EMA of the weights that becomes the inference policy.

Run with ``robodistill train --recipe diffusion/push_state --dataset data/push --out runs/x``;
re-running the same command after a crash resumes from ``runs/x``; under
``torchrun --nproc_per_node 2 -m robodistill train ...`` it trains with DDP (gloo).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel

from robodistill.checkpoint import read_checkpoint
from robodistill.data.loading import (
    WindowDataset,
    chunk_delta_timestamps,
    dataset_fingerprint,
    open_dataset,
    open_dataset_meta,
    select_features,
)
from robodistill.diffusion.config import DiffusionConfig
from robodistill.diffusion.normalizer import MinMaxNormalizer
from robodistill.diffusion.policy import DiffusionModel, diffusion_loss, normalize_obs
from robodistill.diffusion.sampler import make_noise_scheduler
from robodistill.features import ACTION, IMAGE
from robodistill.training.batches import EpochBatches
from robodistill.training.checkpointing import (
    capture_training_state,
    check_resumable,
    ema_weights,
    last_checkpoint,
    restore_training_state,
    save_run_checkpoint,
)
from robodistill.training.ddp import (
    check_replicas_in_sync,
    init_distributed,
    shutdown_distributed,
    wrap_ddp,
)
from robodistill.training.run_log import RunLog
from robodistill.training.seeding import seed_everything
from robodistill.training.update import update


def train(
    config: DiffusionConfig,
    dataset_root: str | Path,
    out: str | Path,
    *,
    stop_after: int | None = None,
    method: str = "diffusion",
    model_cls: type[DiffusionModel] = DiffusionModel,
    loss_fn: Callable[..., torch.Tensor] | None = None,
) -> DiffusionModel:
    """Train (or resume) the run in ``out`` and return the online (non-EMA) model.

    ``stop_after`` ends the run after that many total steps, with a checkpoint, while the LR
    schedule still spans ``config.train.steps`` - as if the process had been killed there.
    Methods that keep this loop but change the network or the denoising objective (Streaming
    Diffusion Policy) pass their checkpoint ``method`` name, ``model_cls`` and
    ``loss_fn(model, obs=..., actions=...) -> loss`` (EDM: :mod:`robodistill.students.edm`);
    the default is the DDPM ε-prediction loss.
    """
    tc = config.train
    out = Path(out)
    dist_info = init_distributed()
    if tc.batch_size % dist_info.world_size:
        raise ValueError(
            f"train.batch_size {tc.batch_size} is not divisible by {dist_info.world_size} processes"
        )
    seed_everything(tc.seed + dist_info.rank)  # DDP broadcasts rank 0's initial weights

    # ---- data: To observation steps and Tp action steps around every frame
    meta = open_dataset_meta(dataset_root)
    source = str(dataset_root)
    obs_keys = select_features(
        meta.features, config.required_features, config.optional_features, source=source
    )
    select_features(meta.features, [ACTION], source=source)
    delta_timestamps = chunk_delta_timestamps(
        obs_keys, ACTION, config.n_obs_steps, config.horizon, meta.fps
    )
    dataset = open_dataset(dataset_root, delta_timestamps)
    windows = WindowDataset(dataset, [*obs_keys, ACTION])
    fingerprint = dataset_fingerprint(dataset)
    feature_shapes = {k: tuple(meta.features[k]["shape"]) for k in [*obs_keys, ACTION]}
    low_dim_keys = [k for k in [*obs_keys, ACTION] if k != IMAGE]
    normalizer = MinMaxNormalizer.from_dataset_stats(meta.stats, low_dim_keys)
    if config.discrete_action_scale != 1.0:  # RTI-DP scale variant
        from robodistill.envs import get_spec
        from robodistill.fast.rti import widen_discrete_stats

        discrete = get_spec(config.task).action.discrete
        stats = widen_discrete_stats(normalizer.to_dict(), discrete, config.discrete_action_scale)
        normalizer = MinMaxNormalizer(stats)

    # ---- model, noise schedule, optimizer, LR schedule, EMA
    model = model_cls(config, feature_shapes)
    ddp_model = wrap_ddp(model, dist_info)
    if loss_fn is None:
        scheduler = make_noise_scheduler(config.noise, "ddpm")
        loss_fn = functools.partial(diffusion_loss, scheduler=scheduler)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    lr_scheduler = get_cosine_schedule_with_warmup(optimizer, tc.warmup_steps, tc.steps)
    ema = EMAModel(
        model.parameters(), decay=tc.ema_max_decay, use_ema_warmup=True, power=tc.ema_power
    )

    # ---- resume from <out>/checkpoints/last if it exists
    start_step = 0
    resume_from = last_checkpoint(out)
    if resume_from is not None:
        ckpt = read_checkpoint(resume_from)
        check_resumable(ckpt, dataclasses.asdict(config), fingerprint)
        start_step, rng_restored = restore_training_state(
            ckpt, model, optimizer, lr_scheduler, ema, dist_info
        )
        if not rng_restored:  # world size changed: a fresh but reproducible stream
            seed_everything(tc.seed + 1000 * start_step + dist_info.rank)
    end_step = tc.steps if stop_after is None else min(stop_after, tc.steps)
    log = RunLog(out, start_step, end_step, enabled=dist_info.is_main)
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        f"{'resuming at step ' + str(start_step) if start_step else 'starting'}: "
        f"{config.task}/{config.obs_mode}, {len(windows)} windows from {fingerprint['root']}, "
        f"{n_params / 1e6:.2f}M parameters, {dist_info.world_size} process(es)"
    )

    batches = EpochBatches(
        len(windows),
        tc.batch_size // dist_info.world_size,
        seed=tc.seed,
        rank=dist_info.rank,
        world_size=dist_info.world_size,
    )

    def save(step: int) -> None:
        state = capture_training_state(step, model, optimizer, lr_scheduler, ema, dist_info)
        if dist_info.is_main:
            save_run_checkpoint(
                out,
                step,
                tc.keep_checkpoints,
                method=method,
                config=config,
                state_dict=ema_weights(model, ema),
                task=config.task,
                obs_mode=config.obs_mode,
                embodiment=config.embodiment,
                feature_shapes=feature_shapes,
                normalization=normalizer.to_dict(),
                dataset=fingerprint,
                training_state=state,
            )
            log.plot()
            log.info(f"checkpoint at step {step} -> {out}")

    # ---- the loop
    model.train()
    loss_sum, loss_count = 0.0, 0
    for step, rows in zip(range(start_step, end_step), batches.iterate(start_step), strict=False):
        batch = windows.get_batch(rows)  # {key: (B, T, ...)}
        obs = normalize_obs(normalizer, {k: batch[k] for k in obs_keys})
        actions = normalizer.normalize(ACTION, batch[ACTION])  # a⁰: (B, Tp, Da) in [-1, 1]
        loss = loss_fn(ddp_model, obs=obs, actions=actions)
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
                ema_decay=ema.cur_decay_value,
            )
            loss_sum, loss_count = 0.0, 0
        if done % tc.checkpoint_every == 0 or done == end_step:
            save(done)

    check_replicas_in_sync(model, dist_info)
    log.info(f"done at step {max(start_step, end_step)}; load with load_policy({str(out)!r})")
    log.close()
    shutdown_distributed(dist_info)
    return model
