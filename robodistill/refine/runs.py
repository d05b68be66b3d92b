"""Run-folder plumbing shared by the refiners: finished-run reuse, summaries, checkpoints.

A refinement run writes into ``<out>``: ``train.log``, ``metrics.jsonl`` (one line per PPO /
distillation iteration; evaluation lines carry ``success_rate``), ``curves.png``,
``checkpoints/`` with ``<out>/config.json`` + ``model.safetensors`` linked to the newest one
(so ``<out>`` is a loadable checkpoint, see :mod:`robodistill.training.checkpointing`), and,
when it finishes, ``summary.json``. Re-running a finished run with the same config and
teacher returns its summary without training (idempotent); a run killed before
``summary.json`` was written starts again from scratch (SB3's optimizer state is not saved,
so an exact resume is not offered).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

from robodistill.configs import ConfigError
from robodistill.files import write_json_atomic
from robodistill.training.checkpointing import CHECKPOINTS_DIR
from robodistill.training.run_log import METRICS_FILE

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


def start_fresh(out: Path) -> None:
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
