"""The three COMPASS stages end to end, each writing its own checkpoint; reruns resume.

Layout of ``<out>``::

    base/                         stage 1 checkpoint (method "compass", stage "base")
    specialists/<embodiment>/     stage 2 checkpoints, one per embodiment
    distill_rounds/round_<k>/     stage 3 after k DAgger rounds (round_00: specialists' data only)
    generalist/                   stage 3, final (= the last round)
    scratch/<embodiment>/         optional PPO-from-scratch baseline: curve.jsonl, eval.json
    logs/                         train.log + metrics.jsonl + loss.png per stage,
                                  residual_<embodiment>.jsonl learning curves, timings.json

A stage whose checkpoint exists is skipped after checking that it was made with the same
settings (else the error says to pass a new ``--out``), so a killed run resumes at the first
unfinished stage; a specialist given with ``--specialist NAME=DIR`` is used instead of
training one, after checking that it is a specialist for NAME.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robodistill.checkpoint import CheckpointError, read_checkpoint
from robodistill.compass.base import demo_embodiment, load_demo_windows, train_base
from robodistill.compass.config import CompassConfig
from robodistill.compass.descriptor import descriptor_scale, embodiment_descriptor
from robodistill.compass.distill import DistillData, fit, record, teacher_driver
from robodistill.compass.envs import FRAME_KEYS
from robodistill.compass.model import BaseModel, GeneralistModel
from robodistill.compass.policy import (
    CompassPolicy,
    StageInfo,
    load_compass_policy,
    read_stage_info,
    save_stage,
)
from robodistill.compass.residual import run_episodes, train_scratch, train_specialist
from robodistill.envs import get_spec
from robodistill.files import write_json_atomic
from robodistill.training.checkpointing import config_changes
from robodistill.training.run_log import RunLog

STAGE_FIELDS = {
    "base": ("task", "seed", "base"),
    "specialist": ("task", "seed", "base", "residual"),
    "generalist": ("task", "seed", "base", "residual", "embodiments", "distill"),
}
"""Config fields a stage's result depends on (a change there means a new run)."""
SCRATCH_EVAL_EPISODES = 100
"""Deterministic episodes of the scratch baseline, seeds 1000.. (``robodistill eval``'s and
``bench compass``'s default episodes, so it compares with the specialist's evaluation)."""


def run_pipeline(
    cfg: CompassConfig,
    dataset: Path,
    out: Path,
    specialists: dict[str, Path] | None = None,
    scratch: list[str] | None = None,
    until: str = "generalist",
) -> dict[str, Any]:
    """Run (or resume) the stages up to ``until``; returns paths and wall times."""
    out, specialists, scratch = Path(out), dict(specialists or {}), list(scratch or [])
    spec = get_spec(cfg.task)
    for name in [*cfg.embodiments, *specialists, *scratch]:
        spec.resolve_embodiment(name)  # unknown names fail before any training
    extra = sorted(set(specialists) - set(cfg.embodiments))
    if extra:
        raise ValueError(
            f"--specialist given for {extra}, which the recipe does not train on "
            f"{cfg.embodiments}: drop it or add it to the recipe's embodiments"
        )
    torch.set_num_threads(1)
    timings = _read_timings(out)
    result: dict[str, Any] = {"out": str(out)}
    windows, fingerprint = load_demo_windows(dataset, cfg.base.n_obs_steps)
    demo = demo_embodiment(dataset, cfg.task)
    info = StageInfo(
        stage="base",
        compass=cfg,
        frame_dims=[windows.columns[k].shape[-1] for k in FRAME_KEYS],
        action_dim=windows.columns["action"].shape[-1],
        demo_embodiment=demo,
        embodiment=demo,
    )
    if not _finished(out / "base", info):
        with _Timed(timings, "base", out):
            log = RunLog(out / "logs" / "base", 0, cfg.base.steps)
            model = train_base(cfg, windows, log)
            log.plot()
            log.close()
            save_stage(out / "base", info, model, fingerprint)
    result["base"] = str(out / "base")
    base = load_compass_policy(read_checkpoint(out / "base")).model
    if until == "base":
        return _done(result, timings)

    teachers = _specialist_stage(cfg, base, info, out, specialists, fingerprint, timings)
    result["specialists"] = {name: str(t.source) for name, t in teachers.items()}
    for name in scratch:
        if not (out / "scratch" / name / "eval.json").is_file():
            with _Timed(timings, f"scratch_{name}", out):
                _scratch_baseline(cfg, name, out / "scratch" / name)
        result.setdefault("scratch", {})[name] = str(out / "scratch" / name)
    if until == "specialists":
        return _done(result, timings)

    g_info = dataclasses.replace(info, stage="generalist")
    if not _finished(out / "generalist", g_info):
        with _Timed(timings, "generalist", out):
            _distill(cfg, base, teachers, g_info, out, fingerprint)
    result["generalist"] = str(out / "generalist")
    return _done(result, timings)


# ----- stage runners --------------------------------------------------------------------
def _specialist_stage(
    cfg: CompassConfig,
    base: BaseModel,
    info: StageInfo,
    out: Path,
    given: dict[str, Path],
    fingerprint: dict[str, Any],
    timings: dict[str, float],
) -> dict[str, CompassPolicy]:
    """Train (or reuse) one specialist per embodiment; returns them loaded, by embodiment."""
    teachers = {}
    for index, name in enumerate(cfg.embodiments):
        path = given.get(name, out / "specialists" / name)
        s_info = dataclasses.replace(info, stage="specialist", embodiment=name)
        if name in given:
            _check_given_specialist(path, name, s_info)
        elif not _finished(path, s_info):
            with _Timed(timings, f"specialist_{name}", out):
                model = _train_specialist(cfg, base, name, cfg.seed + 1000 * (index + 1), out)
                save_stage(path, s_info, model, fingerprint)
        teachers[name] = load_compass_policy(read_checkpoint(path))
    return teachers


def _train_specialist(cfg: CompassConfig, base: BaseModel, name: str, seed: int, out: Path):
    r = cfg.residual
    log = RunLog(
        out / "logs" / f"specialist_{name}", 0, -(-r.total_steps // (r.num_envs * r.n_steps))
    )
    curve = out / "logs" / f"residual_{name}.jsonl"
    model = train_specialist(cfg, base, name, seed, curve, _curve_logger(log))
    log.close()
    return model


def _curve_logger(log: RunLog):
    """Per PPO rollout: advance the bar and log the training episodes' success and return."""

    def on_rollout(row: dict | None) -> None:
        log.advance()
        if row is not None:
            log.metrics(
                row["step"], success_rate=row["success_rate"], mean_return=row["mean_return"]
            )

    return on_rollout


def _scratch_baseline(cfg: CompassConfig, name: str, folder: Path) -> None:
    """PPO from scratch on ``name`` with the specialists' budget: curve + deterministic eval."""
    index = cfg.embodiments.index(name) if name in cfg.embodiments else len(cfg.embodiments)
    r = cfg.residual
    log = RunLog(folder, 0, -(-r.total_steps // (r.num_envs * r.n_steps)))
    act = train_scratch(
        cfg, name, cfg.seed + 1000 * (index + 1), folder / "curve.jsonl", _curve_logger(log)
    )
    log.close()
    episodes = run_episodes(act, cfg, name, SCRATCH_EVAL_EPISODES, cfg.distill.num_envs, 1000)
    rate = float(np.mean([e["success"] for e in episodes]))
    write_json_atomic(
        folder / "eval.json", {"embodiment": name, "success_rate": rate, "episodes": episodes}
    )


def _distill(
    cfg: CompassConfig,
    base: BaseModel,
    teachers: dict[str, CompassPolicy],
    info: StageInfo,
    out: Path,
    fingerprint: dict[str, Any],
) -> None:
    """Stage 3: KL distillation on the specialists' rollouts, then DAgger rounds."""
    from robodistill.envs.nav import DESCRIPTOR_NAMES

    d = cfg.distill
    descriptors = {e: embodiment_descriptor(cfg.task, e) for e in cfg.embodiments}
    scale = descriptor_scale(np.stack(list(descriptors.values())))
    info = dataclasses.replace(
        info,
        descriptor_names=list(DESCRIPTOR_NAMES) if cfg.task == "nav" else [],
        descriptor_scale=scale.tolist(),
        descriptors={e: v.tolist() for e, v in descriptors.items()},
    )
    torch.manual_seed(cfg.seed)
    model = GeneralistModel(base, len(scale), d.hidden_dim, (d.min_log_std, d.max_log_std))
    model.descriptor_scale.copy_(torch.from_numpy(scale))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=d.lr)
    generator = torch.Generator().manual_seed(cfg.seed)
    total = d.steps + d.dagger_rounds * d.dagger_steps
    log = RunLog(out / "logs" / "generalist", 0, total)
    data, step, rounds = DistillData(), 0, []

    def record_round(r: int, label: str, drive_for, episodes: int, seed_of) -> None:
        """Record ``episodes`` per embodiment driven by ``drive_for(k, name)``; the specialists
        label every visited state."""
        for k, name in enumerate(cfg.embodiments):
            eps = record(
                cfg, data, name, descriptors[name], teachers[name], drive_for(k, name),
                episodes, seed=seed_of(k),
            )  # fmt: skip
            success = float(np.mean([e["success"] for e in eps]))
            row = {"round": r, "driver": label, "embodiment": name, "success_rate": success}
            rounds.append(row)
            log.info(f"round {r}: {label} on {name}: success {success:.0%}; {len(data)} samples")

    record_round(
        0,
        "specialist",
        lambda k, name: teacher_driver(teachers[name], d.stochastic_teacher, cfg.seed + k),
        d.episodes_per_embodiment,
        lambda k: 20_000 + 1000 * k,
    )
    step = fit(model, optimizer, data, d.steps, d.batch_size, generator, log, step, d.log_every)
    _save_round(out, info, model, fingerprint, 0)
    for r in range(1, d.dagger_rounds + 1):
        student = CompassPolicy(dataclasses.replace(info, round=r - 1), model)
        record_round(
            r,
            f"generalist round {r - 1}",
            lambda k, name, student=student: student.for_embodiment(name).act,
            d.dagger_episodes,
            lambda k, r=r: 30_000 + 1000 * r + 100 * k,
        )
        step = fit(
            model, optimizer, data, d.dagger_steps, d.batch_size, generator, log, step, d.log_every
        )
        _save_round(out, info, model, fingerprint, r)
    write_json_atomic(out / "logs" / "generalist" / "dagger.json", rounds)
    log.plot()
    log.close()
    save_stage(
        out / "generalist", dataclasses.replace(info, round=d.dagger_rounds), model, fingerprint
    )


def _save_round(out: Path, info: StageInfo, model, fingerprint, r: int) -> None:
    save_stage(
        out / "distill_rounds" / f"round_{r:02d}",
        dataclasses.replace(info, round=r),
        model,
        fingerprint,
    )


# ----- resume and checks ----------------------------------------------------------------
def _finished(path: Path, info: StageInfo) -> bool:
    """Whether ``path`` holds this stage made with the same settings (error if not)."""
    if not (Path(path) / "config.json").exists():
        return False
    old = read_stage_info(read_checkpoint(path))
    if old.stage != info.stage or old.embodiment != info.embodiment:
        raise CheckpointError(
            f"{path} holds a {old.stage} for {old.embodiment!r}, expected a {info.stage} for "
            f"{info.embodiment!r}: move it away or pass a new --out"
        )
    new = dataclasses.asdict(info)
    old_dict = dataclasses.asdict(old)
    fields = STAGE_FIELDS[info.stage]
    changes = [
        c
        for key in fields
        for c in config_changes(old_dict["compass"].get(key), new["compass"].get(key), f"{key}.")
    ]
    changes += [
        c
        for key in ("frame_dims", "action_dim", "demo_embodiment")
        for c in config_changes(old_dict[key], new[key], f"{key}.")
    ]
    if changes:
        raise CheckpointError(
            f"{path} was made with other settings ({'; '.join(changes)}): pass a new --out to "
            "start over, or the same recipe and dataset to resume"
        )
    return True


def _check_given_specialist(path: Path, name: str, expected: StageInfo) -> None:
    """A ``--specialist NAME=DIR`` must be a COMPASS specialist for NAME on the same base."""
    info = read_stage_info(read_checkpoint(path))
    if info.stage != "specialist":
        raise ValueError(
            f"--specialist {name}={path}: that checkpoint is a COMPASS {info.stage}, not a "
            f"specialist; pass <out>/specialists/{name} of a COMPASS run"
        )
    if info.embodiment != name:
        raise ValueError(
            f"--specialist {name}={path}: that checkpoint is the specialist for "
            f"{info.embodiment!r}, not {name!r}; pass --specialist {info.embodiment}={path}, "
            f"or the specialist trained for {name!r}"
        )
    if info.frame_dims != expected.frame_dims or info.compass.base != expected.compass.base:
        raise ValueError(
            f"--specialist {name}={path} was built on a base with other settings: pass a "
            "specialist from a run with the same recipe"
        )


class _Timed:
    """Adds a stage's wall time to ``timings`` and ``<out>/logs/timings.json``."""

    def __init__(self, timings: dict, key: str, out: Path) -> None:
        self.timings, self.key, self.out = timings, key, out

    def __enter__(self) -> _Timed:
        self.start = time.perf_counter()
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            self.timings[self.key] = time.perf_counter() - self.start
            write_json_atomic(self.out / "logs" / "timings.json", self.timings)


def _read_timings(out: Path) -> dict[str, float]:
    path = out / "logs" / "timings.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _done(result: dict[str, Any], timings: dict[str, float]) -> dict[str, Any]:
    result["wall_time_s"] = dict(timings)
    return result
