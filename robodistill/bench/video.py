"""Video bench: teacher vs causal student - latency, quality per stage, drift of long streams.

    robodistill bench video --teacher runs/vid_teacher --student runs/vid_student \
        --json out/video.json

In one run on this CPU (ratios are only meaningful within one run):

* latency: per-frame and first-frame latency of the teacher (N Euler steps over a whole clip;
  no frame exists before the last step) and of the student streaming one stream block by
  block (KV cache, few steps, First-Frame Enhancement on the first block);
* quality on held-out clips, predicting the clip's frames from its context and conditions
  (world model: the actions; avatar: the audio): PSNR/SSIM against the ground truth for the
  teacher, the student after ODE init only and the student after DMD + Self Forcing, at 1
  and 2 steps per block with and without First-Frame Enhancement; for the avatar also the
  mouth-opening error against the audio-driven opening;
* drift: streams ``--long-factor`` times longer than a training clip, metric against frame
  index, with and without the attention sink (plot ``<json>_drift.png``);
* side-by-side videos ground truth | teacher | student (``<json>_side_by_side.mp4``) and
  ground truth | student with sink | without (``<json>_long.mp4``).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

HELP = "video teacher vs causal student: latency, PSNR/SSIM per stage, long-stream drift"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``robodistill bench video``."""
    parser.add_argument("--teacher", required=True, type=Path, help="run of video train-teacher")
    parser.add_argument("--student", required=True, type=Path, help="run of video distill")
    parser.add_argument("--json", required=True, type=Path, help="results; plots/videos beside")
    parser.add_argument("--root", type=Path, help="data root (default: the teacher's)")
    parser.add_argument("--windows", type=int, default=16, help="held-out windows for quality")
    parser.add_argument("--long-factor", type=int, default=10, help="long stream / clip length")
    parser.add_argument("--long-streams", type=int, default=4, help="long streams per variant")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats for latency")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    """Run every measurement and write JSON, plots and videos."""
    import torch

    from robodistill.files import write_json_atomic
    from robodistill.video.checkpoints import STUDENT, TEACHER, load_video_checkpoint
    from robodistill.video.distill import ODE_INIT_DIR

    torch.manual_seed(args.seed)
    teacher = load_video_checkpoint(args.teacher, TEACHER)
    student = load_video_checkpoint(args.student, STUDENT)
    stages = {"ode_init": load_video_checkpoint(args.student / ODE_INIT_DIR, STUDENT)}
    stages["dmd"] = student
    if teacher.config.source != student.config.source:
        raise ValueError("teacher and student model different sources; pass a matching pair")
    root = args.root or Path(teacher.meta["dataset"]["root"])
    windows = _heldout_windows(root, teacher, args.windows)
    results: dict[str, Any] = {
        "bench": "video",
        "source": teacher.config.source,
        "teacher": str(args.teacher),
        "student": str(args.student),
        "torch_threads": torch.get_num_threads(),
    }
    results["latency"] = _latency(teacher, student, windows, args.repeats)
    quality, videos = _quality(teacher, stages, windows)
    results["quality"] = quality
    results["drift"], long_videos = _drift(student, windows, args)
    out = args.json
    _write_videos(out, windows, videos, long_videos, float(teacher.meta["dataset"]["fps"]))
    _plot_drift(out.with_name(f"{out.stem}_drift.png"), results["drift"])
    write_json_atomic(out, results)
    lat = results["latency"]
    print(
        f"per frame: teacher {lat['teacher']['per_frame_ms']:.1f} ms, student 1/2 steps "
        f"{lat['student']['steps1']['per_frame_ms']:.1f}/"
        f"{lat['student']['steps2']['per_frame_ms']:.1f} ms "
        f"({lat['per_frame_speedup']['steps1']:.1f}x/{lat['per_frame_speedup']['steps2']:.1f}x); "
        f"PSNR teacher {quality['teacher']['psnr']:.2f}, 2 steps: ODE init "
        f"{quality['ode_init']['steps2']['psnr']:.2f}, DMD {quality['dmd']['steps2']['psnr']:.2f} "
        f"dB -> {out}"
    )
    return 0


# ----- held-out data ---------------------------------------------------------------------
def _heldout_windows(root: Path, teacher: Any, count: int) -> dict[str, Any]:
    """``count`` held-out windows: frames (n, T, 3, H, W), normalized cond, GT uint8, mouth."""
    import numpy as np

    from robodistill.video.data import VideoClips

    clips = VideoClips(root, "heldout")
    clip_len = teacher.model.config.clip_frames
    span = clip_len - 1 if clips.source == "avatar" else clip_len
    length = clips.arrays["frames"].shape[1]
    starts = np.arange(0, length - span + 1, span)
    pairs = [(c, s) for s in starts for c in range(len(clips))][:count]
    clip, start = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    frames, cond = clips.windows(clip, start, clip_len)
    windows = {"frames": frames, "cond": teacher.normalizer(cond), "clips": clips}
    if clips.source == "avatar":
        windows["mouth"] = clips.arrays["mouth"][clip[:, None], start[:, None] + np.arange(span)]
    return windows


# ----- latency ---------------------------------------------------------------------------
def _latency(teacher: Any, student: Any, windows: dict[str, Any], repeats: int) -> dict:
    """Single-stream latencies (ms) of teacher and student, measured back to back.

    Teacher: a clip takes N Euler steps over all frames; its first frame exists only at the
    end. Student: a stream of 16 blocks with 1 or 2 steps per block (the first block with
    ``first_block_steps``); per-frame = median block time / block_frames (the denoising passes;
    the first also writes the previous block into the KV cache), first-frame = a new stream's
    first block (its first pass also writes the context). Both run under inference_mode.
    """
    import numpy as np
    import torch

    from robodistill.stats import latency_summary
    from robodistill.video.data import tensor_to_frames
    from robodistill.video.stream import VideoStream
    from robodistill.video.teacher import sample_teacher

    mc = teacher.model.config
    n_ctx, clip_len = mc.context_frames, mc.clip_frames
    frames, cond = windows["frames"][:1], windows["cond"][:1]
    teacher_times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        with torch.inference_mode():  # as the student's stream runs
            sample_teacher(teacher.model, frames[:, :n_ctx], cond, teacher.config.sample_steps)
        teacher_times.append(time.perf_counter() - start)
    teacher_clip = float(np.median(teacher_times[1:]))
    teacher_per_frame = teacher_clip / (clip_len - n_ctx)
    result: dict[str, Any] = {
        "teacher": {
            "sample_steps": teacher.config.sample_steps,
            "clip_ms": 1e3 * teacher_clip,
            "first_frame_ms": 1e3 * teacher_clip,
            "per_frame_ms": 1e3 * teacher_per_frame,
        },
        "student": {},
        "per_frame_speedup": {},
        "first_frame_speedup": {},
    }
    block = student.config.block_frames
    blocks = 16
    raw = _raw_conditions(windows, student, blocks * block)
    context = tensor_to_frames(frames[0, :n_ctx])
    for steps in (1, 2):
        config = dataclasses.replace(student.config.stream, steps=steps)
        first_times, block_times = [], []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            stream = VideoStream(student, context, config)
            stream.step(raw[0])
            first_times.append(time.perf_counter() - start)
            for b in range(1, blocks):
                start = time.perf_counter()
                stream.step(raw[b])
                block_times.append(time.perf_counter() - start)
        per_frame = float(np.median(block_times)) / block
        first = float(np.median(first_times[1:]))
        label = f"steps{steps}"
        result["student"][label] = {
            "block_frames": block,
            "steps": steps,
            "first_block_steps": config.first_block_steps,
            "first_frame_ms": 1e3 * first,
            "per_frame_ms": 1e3 * per_frame,
            "block": latency_summary(block_times),
        }
        result["per_frame_speedup"][label] = teacher_per_frame / per_frame
        result["first_frame_speedup"][label] = teacher_clip / first
    return result


def _raw_conditions(windows: dict[str, Any], student: Any, frames: int) -> list:
    """Per-block raw conditions (actions or audio) of a held-out clip, repeated as needed."""
    import numpy as np

    from robodistill.video.data import SAMPLES_PER_FRAME

    clips = windows["clips"]
    block = student.config.block_frames
    key = "audio" if clips.source == "avatar" else "cond"
    per_frame = SAMPLES_PER_FRAME if key == "audio" else 1
    data = np.concatenate([clips.arrays[key][0]] * (1 + frames // len(clips.arrays["frames"][0])))
    return [
        data[b * block * per_frame : (b + 1) * block * per_frame] for b in range(frames // block)
    ]


# ----- quality ---------------------------------------------------------------------------
def _scores(pred: Any, windows: dict[str, Any], n_ctx: int, gauge: Any) -> dict[str, float]:
    """PSNR/SSIM of generated frames f >= C (and the mouth error for the avatar)."""
    from robodistill.video.data import tensor_to_frames
    from robodistill.video.metrics import psnr, ssim

    gen = tensor_to_frames(pred[:, n_ctx:])
    truth = tensor_to_frames(windows["frames"][:, n_ctx:])
    scores = {"psnr": float(psnr(gen, truth).mean()), "ssim": float(ssim(gen, truth).mean())}
    if gauge is not None:
        scores["mouth_error"] = float(abs(gauge(gen) - windows["mouth"]).mean())
    return scores


def _quality(teacher: Any, stages: dict[str, Any], windows: dict[str, Any]) -> tuple[dict, dict]:
    """Scores per model and step setting, and the generated clips for the videos."""
    import torch

    from robodistill.video.data import tensor_to_frames
    from robodistill.video.flow import student_timesteps
    from robodistill.video.metrics import MouthGauge
    from robodistill.video.stream import rollout
    from robodistill.video.teacher import sample_teacher

    mc = teacher.model.config
    n_ctx, clip_len = mc.context_frames, mc.clip_frames
    frames, cond = windows["frames"], windows["cond"]
    gauge = None
    quality: dict[str, Any] = {}
    if "mouth" in windows:
        gt = tensor_to_frames(windows["frames"][:, n_ctx:])
        gauge = MouthGauge.fit(gt, windows["mouth"])
        quality["ground_truth_mouth_error"] = float(abs(gauge(gt) - windows["mouth"]).mean())
    generated = {}
    last_context = frames[:, n_ctx - 1 : n_ctx].expand(-1, clip_len - n_ctx, -1, -1, -1)
    copy = torch.cat([frames[:, :n_ctx], last_context], dim=1)  # (n, T, 3, H, W)
    quality["copy_last_context"] = _scores(copy, windows, n_ctx, gauge)  # a trivial baseline
    with torch.no_grad():
        generated["teacher"], _ = sample_teacher(
            teacher.model, frames[:, :n_ctx], cond, teacher.config.sample_steps
        )
        quality["teacher"] = _scores(generated["teacher"], windows, n_ctx, gauge)
        for name, ckpt in stages.items():
            n_grid, block = ckpt.config.student_steps, ckpt.config.block_frames
            blocks = (clip_len - n_ctx) // block
            quality[name] = {}
            for steps in (1, 2):
                for ffe in (False, True):
                    first = student_timesteps(n_grid, n_grid if ffe else steps)
                    rest = student_timesteps(n_grid, steps)
                    torch.manual_seed(0)
                    pred = rollout(
                        ckpt.model, frames[:, :n_ctx], cond, block, [first] + [rest] * (blocks - 1)
                    )
                    label = f"steps{steps}{'_ffe' if ffe else ''}"
                    quality[name][label] = _scores(pred, windows, n_ctx, gauge)
                    if name == "dmd" and label == "steps2_ffe":
                        generated["student"] = pred
    return quality, generated


# ----- drift -----------------------------------------------------------------------------
def _long_ground_truth(source: str, frames: int, size: int, n: int) -> dict[str, Any]:
    """n fresh episodes (seeds never used for training data) of ``frames`` frames."""
    import numpy as np

    from robodistill.video.data import avatar_clip, push_episode

    if source == "avatar":
        made = [avatar_clip(900_000 + i, frames - 1, size) for i in range(n)]
        video = np.stack([np.concatenate([m["reference"][None], m["frames"]]) for m in made])
        return {
            "frames": video,
            "cond": np.stack(
                [np.concatenate([np.zeros_like(m["cond"][:1]), m["cond"]]) for m in made]
            ),
            "mouth": np.stack([m["mouth"] for m in made]),
        }
    made = [push_episode(900_000 + i, frames, size, noisy=i % 2 == 1) for i in range(n)]
    return {
        "frames": np.stack([m["frames"] for m in made]),
        "cond": np.stack([m["cond"] for m in made]),
    }


def _drift(student: Any, windows: dict[str, Any], args: argparse.Namespace) -> tuple[dict, dict]:
    """Metrics against frame index of long streams, with and without the attention sink."""
    import numpy as np
    import torch

    from robodistill.video.data import frames_to_tensor, tensor_to_frames
    from robodistill.video.metrics import MouthGauge, psnr, ssim
    from robodistill.video.stream import block_schedule, rollout, stream_cache

    mc = student.model.config
    n_ctx, clip_len, block = mc.context_frames, mc.clip_frames, student.config.block_frames
    length = n_ctx + -(-(args.long_factor * clip_len - n_ctx) // block) * block
    gt = _long_ground_truth(student.config.source, length, mc.frame_size, args.long_streams)
    context = frames_to_tensor(gt["frames"][:, :n_ctx])
    cond = student.normalizer(torch.from_numpy(gt["cond"].astype(np.float32)))
    schedule = block_schedule(student.config, (length - n_ctx) // block, student.config.stream)
    truth = gt["frames"][:, n_ctx:]
    drift: dict[str, Any] = {
        "frames": length,
        "clip_frames": clip_len,
        "stream": dataclasses.asdict(student.config.stream),
    }
    videos = {"truth": gt["frames"]}
    gauge = None
    if "mouth" in gt:
        gauge = MouthGauge.fit(truth, gt["mouth"])
    for sink in (True, False):
        torch.manual_seed(args.seed)
        cache = stream_cache(student.model, block, student.config.stream, sink)
        with torch.no_grad():
            pred = rollout(student.model, context, cond, block, schedule, cache=cache)
        gen = tensor_to_frames(pred[:, n_ctx:])
        name = "sink" if sink else "no_sink"
        videos[name] = tensor_to_frames(pred)
        curve = {
            "psnr": psnr(gen, truth).mean(0).tolist(),
            "ssim": ssim(gen, truth).mean(0).tolist(),
        }
        if gauge is not None:
            curve["mouth_error"] = np.abs(gauge(gen) - gt["mouth"]).mean(0).tolist()
        summary = {}
        for metric, values in curve.items():
            summary[f"{metric}_first_clip"] = float(np.mean(values[: clip_len - n_ctx]))
            summary[f"{metric}_last_clip"] = float(np.mean(values[-(clip_len - n_ctx) :]))
            summary[f"{metric}_mean"] = float(np.mean(values))
        drift[name] = {"per_frame": curve, **summary}
    return drift, videos


# ----- outputs ---------------------------------------------------------------------------
def _write_videos(out: Path, windows: dict, videos: dict, long_videos: dict, fps: float) -> None:
    """Side-by-side mp4s: GT | teacher | student, and GT | sink | no sink for a long stream."""
    import numpy as np

    from robodistill.media import write_video
    from robodistill.video.data import tensor_to_frames

    def row(*clips: np.ndarray) -> np.ndarray:
        return np.concatenate(clips, axis=-2)  # side by side along the width

    gt = tensor_to_frames(windows["frames"][:4])
    clip_rows = row(
        gt, tensor_to_frames(videos["teacher"][:4]), tensor_to_frames(videos["student"][:4])
    )
    write_video(
        out.with_name(f"{out.stem}_side_by_side.mp4"),
        list(clip_rows.reshape(-1, *clip_rows.shape[2:])),
        fps,
    )
    long_rows = row(long_videos["truth"][0], long_videos["sink"][0], long_videos["no_sink"][0])
    write_video(out.with_name(f"{out.stem}_long.mp4"), list(long_rows), fps)


def _plot_drift(path: Path, drift: dict[str, Any]) -> None:
    """Metric against frame index, with and without the sink."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(drift["sink"]["per_frame"])
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5))
    for ax, metric in zip(axes, metrics):
        for name in ("sink", "no_sink"):
            ax.plot(drift[name]["per_frame"][metric], label=name.replace("_", " "))
        ax.axvline(drift["clip_frames"], color="grey", ls=":", label="training clip length")
        ax.set_xlabel("generated frame index")
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
