"""Per-chunk inference latency of a policy beside baselines, lerobot's DiffusionPolicy included.

    robodistill bench policy --policy runs/push_teacher --baseline lerobot-diffusion \\
        --nfe 100 10 --json out/latency.json

Every contestant (``--policy`` and each ``--baseline``: checkpoint folders, or
``lerobot-diffusion`` = lerobot's own DiffusionPolicy mirroring the first diffusion checkpoint
given, see :mod:`robodistill.bench.lerobot_baseline`) is run at every NFE of ``--nfe``
(alias ``--steps``), the denoising steps per chunk; a contestant that cannot run an NFE (a
1-3 step student at DDPM-100's) is skipped there and listed under ``skipped``:

* diffusion teachers (ours and lerobot's): DDPM when NFE = K (``noise.num_train_timesteps``,
  the full reverse chain it was trained for, 100 in the recipes), DDIM when NFE < K;
  ``--scheduler`` forces one of them;
* other methods (students): ``num_inference_steps = NFE``.

All contestants get the same observations (recorded from the task env with its scripted
expert, or the first frames of ``--dataset``), one per control step, through their
``select_action`` (lerobot's exactly as ``lerobot-eval`` runs it: preprocess, preprocessor,
``select_action``, postprocessor). The call that re-plans (every Ta-th) is the per-chunk
latency; the others only pop the action queue. Contestants take turns chunk by chunk (rotating
order), after ``--warmup`` chunks each, under ``torch.inference_mode`` with the same thread
count and the garbage collector paused, so ratios come from one run on a noisy machine.

A second, instrumented pass splits each chunk's time into normalization, observation encoder,
noise-model (U-Net) calls, scheduler steps and the rest (Python, history and queue handling),
and ``torch.profiler`` lists the top operators. Writes JSON and a bar plot (p50 solid, p99
light, log scale) beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from robodistill.bench.lerobot_baseline import LEROBOT_DIFFUSION
from robodistill.features import ACTION
from robodistill.policy import Rollout

HELP = "per-chunk latency p50/p99 of a policy vs baselines (incl. lerobot's DiffusionPolicy)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, help="checkpoint folder to measure")
    parser.add_argument(
        "--baseline",
        nargs="*",
        default=[],
        metavar="SOURCE",
        help=f"checkpoint folders and/or {LEROBOT_DIFFUSION!r} (lerobot's own DiffusionPolicy)",
    )
    parser.add_argument(
        "--nfe",
        "--steps",
        dest="nfe",
        type=int,
        nargs="+",
        default=[100, 10],
        help="denoising steps per chunk to measure (teachers: DDPM at NFE = K, DDIM below)",
    )
    parser.add_argument(
        "--scheduler",
        choices=["ddpm", "ddim"],
        default=None,
        help="force this sampler for diffusion teachers (default: DDPM at NFE = K, else DDIM)",
    )
    parser.add_argument("--chunks", type=int, default=50, help="timed chunks per policy and NFE")
    parser.add_argument("--warmup", type=int, default=3, help="untimed chunks first")
    parser.add_argument(
        "--breakdown-chunks", type=int, default=5, help="instrumented chunks (0: no breakdown)"
    )
    parser.add_argument(
        "--profile-chunks", type=int, default=2, help="torch.profiler chunks (0: no profile)"
    )
    parser.add_argument("--batch-size", type=int, default=1, help="envs per call (B)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's, from OMP)"
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        default=None,
        help="take observations from this LeRobotDataset (default: record the task's expert)",
    )
    parser.add_argument(
        "--frames", type=int, default=200, help="observations to record or read (then cycled)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--json",
        type=Path,
        default=Path("out/bench/policy_latency.json"),
        help="result file; the plot is written beside it (.png)",
    )


@dataclass
class Contestant:
    """One policy at one NFE, ready to be timed through its rollout."""

    name: str
    kind: str
    """``robodistill`` (a checkpoint) or ``lerobot``."""
    rollout: Rollout
    """Our policies' own rollouts; lerobot's policy wrapped in one."""
    n_action_steps: int
    """Ta: the rollout re-plans on every Ta-th ``select_action`` call."""
    stages: dict[str, list[tuple[Any, str]]]
    """Stage name -> (object, attribute) callables whose time counts toward that stage."""
    sampler: str | None = None
    params: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


def run(args: argparse.Namespace) -> int:
    import torch

    from robodistill.checkpoint import read_checkpoint

    _check_args(args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    metas = {s: read_checkpoint(s).meta for s in (args.policy, *args.baseline) if _is_ckpt(s)}
    reference = metas[args.policy]
    for source, meta in metas.items():
        _check_same_interface(args.policy, reference, source, meta)
    for nfe in args.nfe:
        for meta in metas.values():
            sampler_options(meta, nfe, args.scheduler)  # bad NFEs fail before any timing
    teacher = _lerobot_reference(metas) if LEROBOT_DIFFUSION in args.baseline else None

    machine = machine_info()
    observations = load_observations(args, reference)
    results, policies = [], {}
    skipped = []
    for nfe in args.nfe:
        contestants = []
        for source in (args.policy, *args.baseline):
            try:
                meta = metas.get(source) or teacher
                contestants.append(_make_contestant(source, meta, nfe, args))
            except ValueError as err:  # e.g. a 1-3 step student asked for DDPM-100's NFE
                skipped.append({"policy": source, "nfe": nfe, "reason": str(err)})
                print(f"NFE {nfe}: skipping {source}: {err}")
        if not contestants:
            raise ValueError(f"no contestant can denoise in {nfe} steps; drop it from --nfe")
        print(f"NFE {nfe}: timing {', '.join(c.name for c in contestants)}")
        chunk_s, queue_s = time_chunks(contestants, observations, args.chunks, args.warmup)
        breakdown = stage_breakdown(contestants, observations, args.breakdown_chunks)
        for c in contestants:
            policies.setdefault(c.name, {"kind": c.kind, "params": c.params, **c.notes})
            results.append(
                {
                    "policy": c.name,
                    "nfe": nfe,
                    "sampler": c.sampler,
                    "n_action_steps": c.n_action_steps,
                    "chunk_latency": _summary(chunk_s[c.name]),
                    "queue_pop_latency": _summary(queue_s[c.name]),
                    "breakdown": breakdown[c.name],
                    "top_ops": op_profile(c, observations, args.profile_chunks),
                }
            )
    report = {
        "bench": "policy",
        "skipped": skipped,
        "machine": machine,
        "setup": {
            "batch_size": args.batch_size,
            "chunks": args.chunks,
            "warmup_chunks": args.warmup,
            "observations": observations.source,
            "seed": args.seed,
            "timed_call": "select_action on the re-planning step (every Ta-th control step)",
            "inference_mode": True,
            "gc_paused_while_timing": True,
        },
        "nfe_to_sampler": "diffusion teachers: DDPM at NFE = K, DDIM below; others: "
        "num_inference_steps = NFE",
        "policies": _compare_parameters(policies),
        "results": results,
        "ratios": latency_ratios(results, args.policy, args.baseline),
    }
    from robodistill.files import write_json_atomic

    write_json_atomic(args.json, report)
    plot = plot_latency(results, args.json.with_suffix(".png"))
    _print_table(report)
    print(f"wrote {args.json} and {plot}")
    return 0


def sampler_options(meta: dict[str, Any], nfe: int, scheduler: str | None) -> dict[str, Any]:
    """``load_policy`` options that make the checkpoint ``meta`` denoise in ``nfe`` steps.

    Diffusion teachers: DDPM when ``nfe`` equals K (its training steps), DDIM below K, unless
    ``scheduler`` forces one; other methods get ``num_inference_steps`` only.
    """
    if nfe < 1:
        raise ValueError(f"--nfe must be >= 1, got {nfe}")
    if meta["method"] != "diffusion":
        return {"num_inference_steps": nfe}
    k = meta["config"]["noise"]["num_train_timesteps"]
    if nfe > k:
        raise ValueError(
            f"NFE {nfe} exceeds the {k} diffusion steps (K) the checkpoint was trained with; "
            f"pass --nfe values <= {k}"
        )
    return {"num_inference_steps": nfe, "scheduler": scheduler or ("ddpm" if nfe == k else "ddim")}


@dataclass
class Observations:
    """A stream of batched observations (feature names, leading axis B), cycled forever."""

    frames: list[dict[str, np.ndarray]]
    source: str

    def stream(self) -> Iterator[dict[str, np.ndarray]]:
        while True:
            yield from self.frames


def load_observations(args: argparse.Namespace, meta: dict[str, Any]) -> Observations:
    """Observations for ``meta``'s features: ``--dataset`` frames or an expert env recording."""
    keys = [k for k in meta["feature_shapes"] if k != ACTION]
    if args.dataset is not None:
        frames, source = dataset_frames(args.dataset, keys, args.frames)
    else:
        frames = record_expert(meta, args.frames, args.seed)
        source = f"{meta['task']} env ({meta['obs_mode']}), scripted expert, seed {args.seed}"
    for key in keys:
        shape = tuple(meta["feature_shapes"][key])
        if frames[0][key].shape != shape:
            raise ValueError(
                f"observations from {source} have {key} of shape {frames[0][key].shape}, the "
                f"policy takes {shape}: pass --dataset with the data the policy was trained on"
            )
    batched = [{k: np.repeat(f[k][None], args.batch_size, axis=0) for k in keys} for f in frames]
    return Observations(batched, f"{source}: {len(frames)} frames, batch {args.batch_size}")


def dataset_frames(
    root: Path, keys: list[str], count: int
) -> tuple[list[dict[str, np.ndarray]], str]:
    """The first ``count`` frames of ``keys`` from the LeRobotDataset at ``root``."""
    from robodistill.data.loading import open_dataset, select_features

    dataset = open_dataset(root)
    select_features(dataset.features, keys, source=str(root))
    count = min(count, dataset.num_frames)
    table = dataset.hf_dataset.with_format("numpy").select_columns(keys)[:count]
    columns = {k: np.stack(table[k]) for k in keys}  # (count, ...)
    frames = [{k: columns[k][i] for k in keys} for i in range(count)]
    return frames, f"dataset {root}"


def record_expert(meta: dict[str, Any], steps: int, seed: int) -> list[dict[str, np.ndarray]]:
    """``steps`` observations of the checkpoint's task env driven by its scripted expert."""
    from robodistill.envs import make_env
    from robodistill.experts import make_expert
    from robodistill.features import env_obs_to_features

    kwargs = {"obs_mode": meta["obs_mode"]}
    if meta.get("embodiment") is not None:
        kwargs["embodiment"] = meta["embodiment"]
    env = make_env(meta["task"], **kwargs)
    rollout = make_expert(meta["task"], meta.get("embodiment"), seed).new_rollout(1, seed=seed)
    episode = seed
    obs, _ = env.reset(seed=episode)
    frames = []
    for _ in range(steps):
        features = env_obs_to_features(obs)
        frames.append(features)
        action = rollout.select_action({k: v[None] for k, v in features.items()})[0]
        obs, _, terminated, truncated, _ = env.step(np.clip(action, -1.0, 1.0))
        if terminated or truncated:
            episode += 1
            obs, _ = env.reset(seed=episode)
            rollout.reset()
    env.close()
    return frames


def turns(
    contestants: list[Contestant], observations: Observations, rounds: int
) -> Iterator[tuple[int, Contestant, int, dict[str, np.ndarray]]]:
    """``(round, contestant, step, obs)`` for ``rounds`` chunk cycles of every contestant.

    Contestants take turns, one chunk cycle (Ta control steps, the first of which re-plans)
    each, in an order that rotates every round, so slow drifts of the machine load hit all of
    them alike. Each contestant reads the same observation stream from its start.
    """
    streams = {c.name: observations.stream() for c in contestants}
    for round_ in range(rounds):
        shift = round_ % len(contestants)
        for c in contestants[shift:] + contestants[:shift]:
            for step in range(c.n_action_steps):
                yield round_, c, step, next(streams[c.name])


def time_chunks(
    contestants: list[Contestant], observations: Observations, chunks: int, warmup: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Seconds of each re-planning call and of each queue-popping call, per contestant."""
    import torch

    chunk_s = {c.name: [] for c in contestants}
    queue_s = {c.name: [] for c in contestants}
    gc.collect()
    gc.disable()
    try:
        with torch.inference_mode():
            for round_, c, step, obs in turns(contestants, observations, warmup + chunks):
                start = time.perf_counter()
                c.rollout.select_action(obs)
                elapsed = time.perf_counter() - start
                if round_ >= warmup:
                    (queue_s if step else chunk_s)[c.name].append(elapsed)
    finally:
        gc.enable()
    return chunk_s, queue_s


class StageTimer:
    """Accumulates the wall time of chosen callables by stage while the context is active.

    Each ``(obj, attribute)`` target is replaced by a timing wrapper on enter and restored on
    exit; the objects are not otherwise changed.
    """

    def __init__(self, stages: dict[str, list[tuple[Any, str]]]) -> None:
        self.stages = stages
        self.seconds = dict.fromkeys(stages, 0.0)
        self.calls = dict.fromkeys(stages, 0)
        self._saved: list[tuple[Any, str, Any, bool]] = []

    def reset(self) -> None:
        self.seconds = dict.fromkeys(self.stages, 0.0)
        self.calls = dict.fromkeys(self.stages, 0)

    def _wrap(self, stage: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - start
                self.calls[stage] += 1

        return timed

    def __enter__(self) -> StageTimer:
        for stage, targets in self.stages.items():
            for obj, attr in targets:
                own = attr in vars(obj)
                original = getattr(obj, attr)
                self._saved.append((obj, attr, original, own))
                setattr(obj, attr, self._wrap(stage, original))
        return self

    def __exit__(self, *exc) -> None:
        for obj, attr, original, own in reversed(self._saved):
            if own:
                setattr(obj, attr, original)
            else:
                delattr(obj, attr)
        self._saved.clear()


def stage_breakdown(
    contestants: list[Contestant], observations: Observations, chunks: int
) -> dict[str, dict[str, Any]]:
    """Per contestant: time per chunk in ``normalize``, ``encoder``, ``film`` (ours: FiLM of the
    whole schedule, once per chunk), ``unet`` (the noise model), ``scheduler_step``, ``other``
    and ``total``.

    ``other`` is everything outside the timed stages: observation conversion, history and
    queue bookkeeping, noise generation and the Python of the sampling loop. For lerobot,
    ``normalize`` is its whole pre/post-processor pipelines and ``encoder`` its
    ``_prepare_global_conditioning``. Means add up to the mean total; medians resist the
    machine's noise. Contestants take turns as in :func:`time_chunks`; wrapper overhead
    (~1 µs per timed call) is included.
    """
    import torch

    if chunks <= 0:
        return {c.name: {} for c in contestants}
    per_chunk = {c.name: {s: [] for s in [*c.stages, "other", "total"]} for c in contestants}
    calls = {c.name: dict.fromkeys(c.stages, 0) for c in contestants}
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.inference_mode())
        timers = {c.name: stack.enter_context(StageTimer(c.stages)) for c in contestants}
        for _, c, step, obs in turns(contestants, observations, chunks):
            timer = timers[c.name]
            timer.reset()
            start = time.perf_counter()
            c.rollout.select_action(obs)
            total = time.perf_counter() - start
            if step:
                continue
            for stage, seconds in timer.seconds.items():
                per_chunk[c.name][stage].append(seconds)
                calls[c.name][stage] += timer.calls[stage]
            per_chunk[c.name]["other"].append(total - sum(timer.seconds.values()))
            per_chunk[c.name]["total"].append(total)
    out = {}
    for name, stages in per_chunk.items():
        mean = {k: 1e3 * float(np.mean(v)) for k, v in stages.items()}
        out[name] = {
            "chunks": chunks,
            "mean_ms_per_chunk": mean,
            "median_ms_per_chunk": {k: 1e3 * float(np.median(v)) for k, v in stages.items()},
            "calls_per_chunk": {k: v / chunks for k, v in calls[name].items()},
            "mean_ms_per_call": {k: mean[k] * chunks / v for k, v in calls[name].items() if v},
        }
    return out


def op_profile(
    c: Contestant, observations: Observations, chunks: int, top: int = 12
) -> list[dict[str, Any]]:
    """The ``top`` torch operators by self CPU time per chunk cycle (Ta control steps).

    Profiled one contestant at a time: it shows where time goes, not who is faster.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile

    if chunks <= 0:
        return []
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # silence kineto's "no GPU" error line
    with (
        torch.inference_mode(),
        profile(activities=[ProfilerActivity.CPU], acc_events=True) as prof,
    ):
        for _, _, _, obs in turns([c], observations, chunks):
            c.rollout.select_action(obs)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    return [
        {
            "op": e.key,
            "self_ms_per_chunk": e.self_cpu_time_total / 1e3 / chunks,
            "calls_per_chunk": e.count / chunks,
        }
        for e in events[:top]
    ]


def latency_ratios(
    results: list[dict[str, Any]], policy: str, baselines: list[str]
) -> list[dict[str, Any]]:
    """p50 and p99 chunk latency of ``policy`` divided by each baseline's, per NFE (< 1: faster)."""
    by_key = {(r["policy"], r["nfe"]): r["chunk_latency"] for r in results}
    ratios = []
    for (name, nfe), ours in by_key.items():
        if name != policy:
            continue
        for baseline in baselines:
            theirs = by_key.get((baseline, nfe))
            if theirs is None:  # the baseline was skipped at this NFE
                continue
            ratios.append(
                {
                    "nfe": nfe,
                    "policy": policy,
                    "baseline": baseline,
                    "p50": ours["p50_ms"] / theirs["p50_ms"],
                    "p99": ours["p99_ms"] / theirs["p99_ms"],
                }
            )
    return ratios


def plot_latency(results: list[dict[str, Any]], out_file: Path) -> Path:
    """Bars of p50 (solid) and p99 (light) chunk latency per policy, grouped by NFE."""
    from robodistill.bench.plots import grouped_bars

    nfes = sorted({r["nfe"] for r in results}, reverse=True)
    names = list(dict.fromkeys(r["policy"] for r in results))
    by_key = {(r["policy"], r["nfe"]): r["chunk_latency"] for r in results}
    missing = {"p50_ms": math.nan, "p99_ms": math.nan}  # skipped at that NFE: no bar
    return grouped_bars(
        out_file,
        [f"NFE {n}" for n in nfes],
        {name: [by_key.get((name, n), missing)["p50_ms"] for n in nfes] for name in names},
        upper={name: [by_key.get((name, n), missing)["p99_ms"] for n in nfes] for name in names},
        ylabel="latency per chunk (ms)",
        title="per-chunk inference latency",
        note="solid: p50, light: p99",
    )


def machine_info() -> dict[str, Any]:
    """CPU model, cores, library versions and thread settings, recorded with every result."""
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("torch", "lerobot", "diffusers", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu_model": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS"),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def _make_contestant(
    source: str, meta: dict[str, Any], nfe: int, args: argparse.Namespace
) -> Contestant:
    if source == LEROBOT_DIFFUSION:
        return _lerobot_contestant(meta, nfe, args)
    from robodistill.policy import load_policy

    options = sampler_options(meta, nfe, args.scheduler)
    policy = load_policy(source, **options)
    return Contestant(
        name=source,
        kind="robodistill",
        rollout=policy.new_rollout(args.batch_size, seed=args.seed),
        n_action_steps=policy.info.n_action_steps,
        stages=_robodistill_stages(policy),
        sampler=options.get("scheduler"),
        params=_robodistill_parameter_counts(policy),
        notes={"method": meta["method"]},
    )


def _lerobot_contestant(meta: dict[str, Any], nfe: int, args: argparse.Namespace) -> Contestant:
    from robodistill.bench.lerobot_baseline import (
        LerobotDiffusionRollout,
        build_lerobot_diffusion,
        lerobot_parameter_counts,
    )

    scheduler = sampler_options(meta, nfe, args.scheduler)["scheduler"]
    baseline = build_lerobot_diffusion(meta, nfe, scheduler, seed=args.seed)
    rollout = LerobotDiffusionRollout(baseline, args.batch_size)
    cfg = baseline.policy.config
    model = baseline.policy.diffusion
    return Contestant(
        name=LEROBOT_DIFFUSION,
        kind="lerobot",
        rollout=rollout,
        n_action_steps=cfg.n_action_steps,
        stages={
            "normalize": [(baseline, "preprocessor"), (baseline, "postprocessor")],
            "encoder": [(model, "_prepare_global_conditioning")],
            "unet": [(model.unet, "forward")],
            "scheduler_step": [(model.noise_scheduler, "step")],
        },
        sampler=scheduler,
        params=lerobot_parameter_counts(baseline.policy),
        notes={
            "mirrors": meta.get("_source"),
            "differences": baseline.differences,
            "config": {
                "n_obs_steps": cfg.n_obs_steps,
                "horizon": cfg.horizon,
                "n_action_steps": cfg.n_action_steps,
                "down_dims": list(cfg.down_dims),
                "diffusion_step_embed_dim": cfg.diffusion_step_embed_dim,
                "kernel_size": cfg.kernel_size,
                "n_groups": cfg.n_groups,
                "num_train_timesteps": cfg.num_train_timesteps,
                "vision_backbone": cfg.vision_backbone if cfg.image_features else None,
            },
        },
    )


def _compare_parameters(policies: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Add to lerobot's entry its parameter count minus that of the checkpoint it mirrors."""
    for entry in policies.values():
        mirrored = policies.get(entry.get("mirrors") or "", {}).get("params", {})
        if entry["kind"] == "lerobot" and mirrored:
            entry["params_minus_mirrored"] = {
                k: v - mirrored[k] for k, v in entry["params"].items() if k in mirrored
            }
    return policies


def _robodistill_stages(policy: Any) -> dict[str, list[tuple[Any, str]]]:
    """Timed stages of a policy built from the teacher's pieces (normalizer, model, sampler)."""
    model = getattr(policy, "model", None)
    scheduler = getattr(getattr(policy, "sampler", None), "scheduler", None)
    candidates = {
        "normalize": [
            (getattr(policy, "normalizer", None), "normalize"),
            (getattr(policy, "normalizer", None), "unnormalize"),
        ],
        "encoder": [(getattr(model, "encoder", None), "forward")],
        # every ε_θ evaluation runs ``modulated`` once (``forward`` delegates to it); the FiLM
        # of a whole DDPM/DDIM schedule is computed once per chunk by ``film_schedule``
        "film": [(getattr(model, "unet", None), "film_schedule")],
        "unet": [(getattr(model, "unet", None), "modulated")],
        "scheduler_step": [(scheduler, "step")],
    }
    return {
        stage: [(obj, attr) for obj, attr in targets if obj is not None]
        for stage, targets in candidates.items()
        if all(obj is not None for obj, _ in targets)
    }


def _robodistill_parameter_counts(policy: Any) -> dict[str, int]:
    model = getattr(policy, "model", None)
    if model is None:
        return {}
    counts = {"total": sum(p.numel() for p in model.parameters())}
    for part in ("unet", "encoder"):
        if hasattr(model, part):
            counts[part] = sum(p.numel() for p in getattr(model, part).parameters())
    return counts


def _lerobot_reference(metas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The first diffusion checkpoint given (``--policy`` first): lerobot's model mirrors it."""
    for source, meta in metas.items():
        if meta["method"] == "diffusion":
            return {**meta, "_source": source}
    raise ValueError(
        f"{LEROBOT_DIFFUSION} mirrors a diffusion teacher's architecture, but no checkpoint "
        "given is one: add the teacher's checkpoint folder to --baseline"
    )


def _check_args(args: argparse.Namespace) -> None:
    if args.chunks < 1 or args.warmup < 0 or args.batch_size < 1:
        raise ValueError("--chunks and --batch-size must be >= 1 and --warmup >= 0")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    sources = [args.policy, *args.baseline]
    if len(set(sources)) != len(sources):
        raise ValueError(f"each policy may be given once; got {sources}")
    if args.policy == LEROBOT_DIFFUSION:
        raise ValueError(
            f"--policy must be a robodistill checkpoint; pass {LEROBOT_DIFFUSION} as --baseline"
        )
    for source in sources:
        if _is_ckpt(source) and not Path(source).is_dir():
            raise ValueError(
                f"{source!r} is neither a checkpoint folder nor {LEROBOT_DIFFUSION!r}: pass the "
                "--out folder of `robodistill train` or the name of lerobot's baseline"
            )


def _is_ckpt(source: str) -> bool:
    return source != LEROBOT_DIFFUSION


def _check_same_interface(
    policy: str, reference: dict[str, Any], source: str, meta: dict[str, Any]
) -> None:
    """Contestants must take the same observations and give the same actions."""
    for key in ("task", "obs_mode", "feature_shapes"):
        if meta.get(key) != reference.get(key):
            raise ValueError(
                f"{source} has {key} {meta.get(key)!r} but {policy} has {reference.get(key)!r}: "
                "compare policies trained for the same task and observations"
            )


def _summary(seconds: list[float]) -> dict[str, float]:
    from robodistill.stats import latency_summary

    return {**latency_summary(seconds), "n": len(seconds)}


def _print_table(report: dict[str, Any]) -> None:
    print(f"{'policy':<40} {'NFE':>4} {'sampler':>7} {'p50 ms':>9} {'p99 ms':>9}")
    for r in report["results"]:
        lat = r["chunk_latency"]
        print(
            f"{r['policy']:<40} {r['nfe']:>4} {r['sampler'] or '-':>7} "
            f"{lat['p50_ms']:>9.2f} {lat['p99_ms']:>9.2f}"
        )
    for q in report["ratios"]:
        print(
            f"NFE {q['nfe']}: {q['policy']} / {q['baseline']}: "
            f"p50 x{q['p50']:.2f}, p99 x{q['p99']:.2f}"
        )
