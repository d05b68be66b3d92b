"""Run-folder plumbing shared by the refiners: finished-run reuse, resume, summaries.

A refinement run writes into ``<out>``: ``train.log``, ``metrics.jsonl`` (one line per PPO /
distillation iteration; evaluation lines carry ``success_rate``), ``curves.png``,
``checkpoints/`` with ``<out>/config.json`` + ``model.safetensors`` linked to the newest one
(so ``<out>`` is a loadable checkpoint, see :mod:`robodistill.training.checkpointing`), and,
when it finishes, ``summary.json``. Re-running a finished run with the same config and
teacher returns its summary without training (idempotent). Each checkpoint (one per
evaluation) also holds the loop state: weights, optimizer moments, torch RNG and a JSON
``progress`` dict (env steps, wall and teacher seconds, the curve so far). A killed run
resumes from its last checkpoint with fresh episodes (the envs are reset, so it is a
continuation, not a bit-exact replay).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robodistill.checkpoint import TrainingState, load_training_state, read_checkpoint
from robodistill.configs import ConfigError
from robodistill.files import write_json_atomic
from robodistill.training.checkpointing import (
    CHECKPOINTS_DIR,
    last_checkpoint,
    load_weights_and_optimizer,
    weights_and_optimizer,
)
from robodistill.training.run_log import METRICS_FILE, RunLog

SUMMARY_FILE = "summary.json"


def finished_summary(out: Path, config: Any, teacher: str) -> dict[str, Any] | None:
    """The summary of a finished run in ``out`` with this config and teacher, else None.

    A finished run with another config or teacher is a ConfigError: its folder is not
    overwritten silently.
    """
    path = Path(out) / SUMMARY_FILE
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())
    same = summary.get("config") == dataclasses.asdict(config) and summary.get("teacher") == teacher
    if not same:
        raise ConfigError(
            f"{out} holds a finished run with another config or teacher ({path}); pass a new "
            "--out, or delete that folder to train again"
        )
    return summary


def resume_point(out: Path, config: Any, teacher: str) -> TrainingState | None:
    """The loop state saved by an interrupted run in ``out``, or None to start afresh.

    Without a checkpoint, leftovers (metrics of a run killed before its first checkpoint) are
    cleared. A checkpoint of another config or teacher is a ConfigError, not overwritten.
    """
    ckpt_dir = last_checkpoint(out)
    if ckpt_dir is None:
        _start_fresh(out)
        return None
    meta = read_checkpoint(ckpt_dir).meta
    same = meta["config"] == _as_json(dataclasses.asdict(config))
    if not same or meta["dataset"].get("teacher") != teacher:
        raise ConfigError(
            f"{out} holds an interrupted run with another config or teacher ({ckpt_dir}); pass "
            "the same recipe and teacher to resume it, a new --out, or delete that folder"
        )
    return load_training_state(ckpt_dir)


def fresh_progress(eval_every: int, start_point: dict[str, Any]) -> dict[str, Any]:
    """The loop state of a new run whose step-0 evaluation is ``start_point``."""
    return {
        "steps": 0,
        "wall_s": 0.0,
        "teacher_s": 0.0,
        "next_eval": eval_every,
        "curve": [start_point],
    }


def open_run_log(
    out: Path,
    progress: dict[str, Any],
    total_steps: int,
    headline: str,
    start_row: dict[str, float] | None,
) -> RunLog:
    """The run's log and progress bar (in env steps) with ``headline`` in train.log. A new run
    passes its step-0 evaluation as ``start_row`` (the first metrics line); a resumed one None."""
    log = RunLog(out, progress["steps"], total_steps)
    resumed = f", resumed at step {progress['steps']}" if start_row is None else ""
    log.info(headline + resumed)
    if start_row is not None:
        log.metrics(0, loss=float("nan"), **start_row)
    return log


def capture_loop_state(
    module: nn.Module, optimizer: torch.optim.Optimizer, progress: dict[str, Any]
) -> TrainingState:
    """What :func:`restore_loop_state` needs to continue after this point (``progress``: JSON)."""
    tensors, optim_json = weights_and_optimizer(module, optimizer)
    tensors["rng.torch"] = torch.get_rng_state()
    return TrainingState(tensors=tensors, meta={"optimizer": optim_json, "progress": progress})


def restore_loop_state(
    state: TrainingState, module: nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Load weights, optimizer and RNG saved by :func:`capture_loop_state`; return progress."""
    load_weights_and_optimizer(module, optimizer, state.tensors, state.meta["optimizer"])
    torch.set_rng_state(state.tensors["rng.torch"])
    return state.meta["progress"]


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _start_fresh(out: Path) -> None:
    """Clear what an interrupted run left (metrics and checkpoints) before training anew."""
    out = Path(out)
    (out / METRICS_FILE).unlink(missing_ok=True)
    shutil.rmtree(out / CHECKPOINTS_DIR, ignore_errors=True)
    for name in ("config.json", "model.safetensors"):
        if (out / name).is_symlink():
            (out / name).unlink()
    out.mkdir(parents=True, exist_ok=True)


def write_summary(out: Path, config: Any, teacher: str, **fields: Any) -> dict[str, Any]:
    """Write ``<out>/summary.json`` (marks the run finished) and return it."""
    summary = {"config": dataclasses.asdict(config), "teacher": teacher, **fields}
    write_json_atomic(Path(out) / SUMMARY_FILE, summary)
    return summary
