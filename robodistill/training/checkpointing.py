"""Run checkpoints: periodic, atomic, and enough state to resume a killed run exactly.

Layout of a run directory ``<out>``::

    <out>/config.json           -> checkpoints/last/config.json        (symlinks: <out> itself
    <out>/model.safetensors     -> checkpoints/last/model.safetensors   is a loadable checkpoint)
    <out>/checkpoints/last      -> 00002000                             (switched atomically)
    <out>/checkpoints/00002000/ config.json, model.safetensors, training_state/

Each step directory is written by :func:`robodistill.checkpoint.save_checkpoint` (temp dir +
``os.replace``); the ``last`` symlink is then replaced atomically, so a SIGKILL at any moment
leaves ``<out>`` pointing at a complete checkpoint. ``training_state/`` holds the online
weights, the optimizer state flattened into safetensors, the LR-schedule and EMA counters
(JSON), the step and every rank's torch RNG state; the EMA weights are ``model.safetensors``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from diffusers.training_utils import EMAModel
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from robodistill.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    Checkpoint,
    CheckpointError,
    TrainingState,
    load_training_state,
    save_checkpoint,
)
from robodistill.training.ddp import DistInfo, gather

CHECKPOINTS_DIR = "checkpoints"
LAST = "last"
RESUMABLE_CHANGES = (
    "train.steps",
    "train.log_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
)
"""Config fields that may differ between a run and its resumption (e.g. to train longer)."""


def ema_weights(model: nn.Module, ema: EMAModel) -> dict[str, torch.Tensor]:
    """The model's state dict with every parameter replaced by its EMA shadow."""
    weights = dict(model.state_dict())
    for (name, _), shadow in zip(model.named_parameters(), ema.shadow_params, strict=True):
        weights[name] = shadow
    return weights


def weights_and_optimizer(
    model: nn.Module, optimizer: Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Model and optimizer state without pickle: tensors ``model.<name>`` and
    ``optimizer.<param>.<name>`` (model tensors cloned, so shared ones can be saved), and the
    optimizer's non-tensor rest as JSON."""
    tensors = {f"model.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    optim = optimizer.state_dict()
    optim_json: dict[str, Any] = {"param_groups": optim["param_groups"], "state": {}}
    for index, param_state in optim["state"].items():
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                optim_json["state"].setdefault(str(index), {})[key] = value
    return tensors, optim_json


def load_weights_and_optimizer(
    model: nn.Module,
    optimizer: Optimizer,
    tensors: dict[str, torch.Tensor],
    optim_json: dict[str, Any],
) -> None:
    """Inverse of :func:`weights_and_optimizer` (``tensors`` may hold other keys too)."""
    prefix = "model."
    model.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    optim_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            optim_state.setdefault(int(index), {})[name] = value
    for index, values in optim_json["state"].items():
        optim_state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": optim_state, "param_groups": optim_json["param_groups"]})


def capture_training_state(
    step: int,
    model: nn.Module,
    optimizer: Optimizer,
    lr_scheduler: LRScheduler,
    ema: EMAModel,
    dist_info: DistInfo,
) -> TrainingState:
    """Everything but the EMA weights needed to continue after ``step`` (collective in DDP)."""
    tensors, optim_json = weights_and_optimizer(model, optimizer)
    for rank, rng in enumerate(gather(torch.get_rng_state(), dist_info)):
        tensors[f"rng.torch.rank{rank}"] = rng
    ema_json = {k: v for k, v in ema.state_dict().items() if k != "shadow_params"}
    meta = {
        "step": step,
        "world_size": dist_info.world_size,
        "optimizer": optim_json,
        "lr_scheduler": lr_scheduler.state_dict(),
        "ema": ema_json,
    }
    return TrainingState(tensors=tensors, meta=meta)


def restore_training_state(
    ckpt: Checkpoint,
    model: nn.Module,
    optimizer: Optimizer,
    lr_scheduler: LRScheduler,
    ema: EMAModel,
    dist_info: DistInfo,
) -> tuple[int, bool]:
    """Load a run checkpoint into the training objects; returns (step, rng_restored).

    The RNG state is restored only when the world size is unchanged.
    """
    state = load_training_state(ckpt.path)
    load_weights_and_optimizer(model, optimizer, state.tensors, state.meta["optimizer"])
    lr_scheduler.load_state_dict(state.meta["lr_scheduler"])
    ema_state = dict(state.meta["ema"])
    ema_state["shadow_params"] = [
        ckpt.state_dict[name].clone() for name, _ in model.named_parameters()
    ]
    ema.load_state_dict(ema_state)
    rng_restored = state.meta["world_size"] == dist_info.world_size
    if rng_restored:
        torch.set_rng_state(state.tensors[f"rng.torch.rank{dist_info.rank}"])
    return state.meta["step"], rng_restored


def config_changes(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two config dicts differ, e.g. ``["unet.down_dims: [..] -> [..]"]``."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for key in sorted(set(old) | set(new)):
            changes += config_changes(old.get(key), new.get(key), f"{prefix}{key}.")
        return changes
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        old, new = list(old), list(new)
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def last_checkpoint(out: Path) -> Path | None:
    """The newest complete checkpoint of the run in ``out``, or None."""
    last = Path(out) / CHECKPOINTS_DIR / LAST
    return last.resolve() if last.is_dir() else None


def check_resumable(ckpt: Checkpoint, config: dict[str, Any], dataset: dict[str, Any]) -> None:
    """Raise a CheckpointError unless ``config`` and ``dataset`` may continue that run."""
    meta = ckpt.meta
    out = ckpt.path.parent.parent
    changes = [
        c
        for c in config_changes(meta["config"], config)
        if c.split(":")[0] not in RESUMABLE_CHANGES
    ]
    if changes:
        raise CheckpointError(
            f"{out} holds a run with another config ({'; '.join(changes)}); pass a new --out "
            "to start a new run, or the same recipe to resume it"
        )
    old_data = {k: v for k, v in meta["dataset"].items() if k != "root"}
    new_data = {k: v for k, v in dataset.items() if k != "root"}
    if old_data != new_data:
        raise CheckpointError(
            f"{out} was trained on another dataset ({meta['dataset']['root']}, "
            f"{meta['dataset']['total_episodes']} episodes); pass a new --out for this dataset"
        )


def save_run_checkpoint(out: Path, step: int, keep: int, **checkpoint: Any) -> Path:
    """Write ``<out>/checkpoints/<step>``, point ``last`` and ``<out>``'s links at it, prune.

    ``checkpoint`` holds the keyword arguments of :func:`robodistill.checkpoint.save_checkpoint`.
    """
    out = Path(out)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if (out / name).exists() and not (out / name).is_symlink():
            raise CheckpointError(
                f"{out / name} is not part of a training run (it is a plain file); "
                "pass an empty or new --out directory"
            )
    checkpoints = out / CHECKPOINTS_DIR
    step_dir = save_checkpoint(checkpoints / f"{step:08d}", step=step, **checkpoint)
    _atomic_symlink(checkpoints / LAST, step_dir.name)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        _atomic_symlink(out / name, f"{CHECKPOINTS_DIR}/{LAST}/{name}")
    _prune(_step_dirs(checkpoints), keep=max(keep, 1), current=step_dir)
    for leftover in [*checkpoints.glob(".*.tmp-*"), *checkpoints.glob(".*.old-*")]:
        shutil.rmtree(leftover, ignore_errors=True)  # from a run killed while writing
    return step_dir


def _step_dirs(checkpoints: Path) -> list[Path]:
    return sorted(p for p in checkpoints.iterdir() if p.name.isdigit() and p.is_dir())


def _prune(step_dirs: Iterable[Path], keep: int, current: Path) -> None:
    old = [p for p in step_dirs if p != current]
    for path in old[: max(len(old) - (keep - 1), 0)]:
        shutil.rmtree(path)


def _atomic_symlink(link: Path, target: str) -> None:
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)
