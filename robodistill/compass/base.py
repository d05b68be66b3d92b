"""COMPASS stage 1: the imitation base, trained on one embodiment's expert demos.

The paper pre-trains a world model jointly with a mobility policy by imitation (its X-Mobility
base). Here: windows of To+1 frames and the action a_t are read from the LeRobotDataset; the
history encoder, the latent dynamics head with its observation decoder and the BC policy head
are trained together on :func:`robodistill.compass.model.base_loss` with AdamW and a cosine
learning rate. The observation normalizer (the demos' mean and std) is part of the weights.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from robodistill.compass.config import CompassConfig
from robodistill.compass.envs import FRAME_KEYS
from robodistill.compass.model import BaseModel, base_loss
from robodistill.data.loading import (
    DatasetError,
    WindowDataset,
    dataset_fingerprint,
    open_dataset,
    open_dataset_meta,
    select_features,
)
from robodistill.features import ACTION
from robodistill.training.batches import EpochBatches
from robodistill.training.run_log import RunLog
from robodistill.training.seeding import seed_everything

DATASET_SIDECAR = "meta/robodistill.json"
"""Written by ``robodistill collect``: task and embodiment of the demos."""


def demo_embodiment(root: Path, task: str) -> str:
    """The embodiment the demos at ``root`` were recorded with (a DatasetError if unknown)."""
    sidecar = Path(root) / DATASET_SIDECAR
    if not sidecar.is_file():
        raise DatasetError(
            f"{sidecar} is missing: COMPASS needs to know which embodiment the demos drive; "
            "record them with `robodistill collect --task nav --embodiment NAME`"
        )
    meta = json.loads(sidecar.read_text())
    if meta.get("task") != task:
        raise DatasetError(
            f"dataset {root} holds demos of task {meta.get('task')!r}, the recipe trains "
            f"{task!r}: pass a {task} dataset or a recipe for {meta.get('task')!r}"
        )
    return meta["embodiment"]


def load_demo_windows(root: Path, n_obs_steps: int) -> tuple[WindowDataset, dict[str, Any]]:
    """Windows of To+1 frames (offsets −(To−1)..+1) and the action at offset 0, in memory."""
    meta = open_dataset_meta(root)
    select_features(meta.features, [*FRAME_KEYS, ACTION], source=str(root))
    fps = meta.fps
    offsets = [k / fps for k in range(-(n_obs_steps - 1), 2)]
    delta = {**{k: offsets for k in FRAME_KEYS}, ACTION: [0.0]}
    dataset = open_dataset(root, delta)
    return WindowDataset(dataset, [*FRAME_KEYS, ACTION]), dataset_fingerprint(dataset)


def frames_of(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Concatenate the frame features of a window batch: (B, T, F)."""
    return torch.cat([batch[k].float() for k in FRAME_KEYS], dim=-1)


def train_base(cfg: CompassConfig, windows: WindowDataset, log: RunLog) -> BaseModel:
    """Train stage 1 on the demo windows (To+1 frames, a_t) and return the model in eval mode."""
    c = cfg.base
    seed_everything(cfg.seed)
    frame_dim = sum(windows.columns[k].shape[-1] for k in FRAME_KEYS)
    action_dim = windows.columns[ACTION].shape[-1]
    model = BaseModel(frame_dim, action_dim, c)
    all_frames = torch.cat([windows.columns[k].float() for k in FRAME_KEYS], dim=-1)  # (N, F)
    model.normalizer.set_stats(all_frames.mean(0), all_frames.std(0), c.min_std)
    optimizer = torch.optim.AdamW(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / c.steps, 1.0)))
    )
    batches = EpochBatches(len(windows), c.batch_size, seed=cfg.seed).iterate()
    model.train()
    for step in range(1, c.steps + 1):
        batch = windows.get_batch(next(batches))
        frames, action = frames_of(batch), batch[ACTION][:, 0].float()  # (B, To+1, F), (B, Da)
        loss, last = base_loss(model, frames, action, c.dynamics_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        log.advance()
        if step % c.log_every == 0 or step == c.steps:
            log.metrics(step, **last, lr=schedule.get_last_lr()[0])
    return model.eval()
