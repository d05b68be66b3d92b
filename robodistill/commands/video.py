"""Causal video distillation: clips -> bidirectional teacher -> causal few-step student -> stream.

    robodistill video data --source push --clips 200 --root data/video_push
    robodistill video train-teacher --recipe video/push_world --root data/video_push \
        --out runs/vid_teacher
    robodistill video distill --teacher runs/vid_teacher --recipe video/push_world_causal \
        --out runs/vid_student
    robodistill video stream --model runs/vid_student --actions out/actions.npy \
        --frames 300 --out out/stream.mp4

Every step is kill-safe: re-running the same command resumes it (data adds missing clips,
training continues from ``<out>/checkpoints/last``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "video world model / avatar: make clips, train a teacher, distil a causal student, stream"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-subcommands ``data``, ``train-teacher``, ``distill`` and ``stream``."""
    sub = parser.add_subparsers(dest="video_command", required=True, metavar="STEP")

    data = sub.add_parser("data", help="render clips (push world model) or synthesize (avatar)")
    data.add_argument("--source", required=True, choices=["push", "avatar"])
    data.add_argument("--clips", required=True, type=int, help="number of clips (10%% held out)")
    data.add_argument("--root", required=True, type=Path, help="output folder (rerun to resume)")
    data.add_argument("--frames", type=int, default=48, help="frames per clip")
    data.add_argument("--size", type=int, default=32, help="frame side in pixels")
    data.add_argument("--seed", type=int, default=0)

    teacher = sub.add_parser("train-teacher", help="train the bidirectional flow-matching teacher")
    teacher.add_argument("--recipe", required=True, help="e.g. video/push_world or a .toml path")
    teacher.add_argument("--root", required=True, type=Path, help="data root of `video data`")
    teacher.add_argument("--out", required=True, type=Path, help="run folder; rerun to resume")
    teacher.add_argument("--steps", type=int, help="override the recipe's train.steps")

    distill = sub.add_parser("distill", help="ODE-pair init + DMD with Self-Forcing rollouts")
    distill.add_argument("--teacher", required=True, type=Path, help="run of train-teacher")
    distill.add_argument("--recipe", required=True, help="e.g. video/push_world_causal")
    distill.add_argument("--out", required=True, type=Path, help="run folder; rerun to resume")
    distill.add_argument("--root", type=Path, help="data root (default: the teacher's)")

    stream = sub.add_parser("stream", help="stream frames from a student as conditions arrive")
    stream.add_argument("--model", required=True, type=Path, help="run of `video distill`")
    cond = stream.add_mutually_exclusive_group(required=True)
    cond.add_argument(
        "--actions",
        type=Path,
        help="world model: .npy of (frames, action_dim), or a clip .npz (its 'cond')",
    )
    cond.add_argument(
        "--audio", type=Path, help="avatar: .npy waveform, or a clip .npz (its 'audio')"
    )
    stream.add_argument("--sample-rate", type=int, help="of --audio (must be the model's)")
    stream.add_argument("--frames", required=True, type=int, help="frames to generate")
    stream.add_argument("--out", required=True, type=Path, help=".mp4 or .gif")
    stream.add_argument(
        "--context",
        type=Path,
        help="clip .npz whose first frames (avatar: reference) start the stream",
    )
    stream.add_argument("--seed", type=int, default=0, help="noise seed (and default context)")
    stream.add_argument("--steps", type=int, help="denoising steps per block")
    stream.add_argument("--first-block-steps", type=int, help="steps of the first block")
    stream.add_argument("--window", type=int, help="recent frames kept in the KV cache")
    stream.add_argument("--no-sink", action="store_true", help="no attention-sink frames")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the chosen step; errors a user can fix are ValueErrors naming the fix."""
    return {
        "data": _data,
        "train-teacher": _train_teacher,
        "distill": _distill,
        "stream": _stream,
    }[args.video_command](args)


def _data(args: argparse.Namespace) -> int:
    from robodistill.video.data import write_clips

    if args.clips < 2:
        raise ValueError("--clips must be >= 2 (at least one is held out)")
    root = write_clips(args.source, args.root, args.clips, args.frames, args.size, args.seed)
    print(f"{args.clips} {args.source} clips in {root}")
    return 0


def _train_teacher(args: argparse.Namespace) -> int:
    import dataclasses

    from robodistill.recipes import load_recipe
    from robodistill.video.config import VideoTeacherConfig
    from robodistill.video.teacher import train_teacher

    config = load_recipe(args.recipe, VideoTeacherConfig)
    if args.steps is not None:
        config = dataclasses.replace(
            config, train=dataclasses.replace(config.train, steps=args.steps)
        )
    train_teacher(config, args.root, args.out)
    return 0


def _distill(args: argparse.Namespace) -> int:
    from robodistill.recipes import load_recipe
    from robodistill.video.config import VideoStudentConfig
    from robodistill.video.distill import distill

    distill(load_recipe(args.recipe, VideoStudentConfig), args.teacher, args.out, args.root)
    return 0


def _stream(args: argparse.Namespace) -> int:
    import dataclasses
    import time

    import numpy as np

    from robodistill.media import write_video
    from robodistill.video.checkpoints import STUDENT, load_video_checkpoint
    from robodistill.video.data import AUDIO_SAMPLE_RATE, SAMPLES_PER_FRAME, default_context
    from robodistill.video.stream import stream_frames

    student = load_video_checkpoint(args.model, STUDENT)
    config = student.config
    block = config.block_frames
    blocks = -(-args.frames // block)
    if config.source == "avatar":
        if args.audio is None:
            raise ValueError(f"{args.model} is an avatar student: pass --audio, not --actions")
        rate = args.sample_rate or AUDIO_SAMPLE_RATE
        if rate != AUDIO_SAMPLE_RATE:
            raise ValueError(
                f"--audio is sampled at {rate} Hz but the student takes {AUDIO_SAMPLE_RATE} Hz: "
                f"resample it to {AUDIO_SAMPLE_RATE} Hz"
            )
        audio = np.load(args.audio, allow_pickle=False)
        audio = audio["audio"] if args.audio.suffix == ".npz" else audio
        chunk = block * SAMPLES_PER_FRAME
        needed = blocks * chunk
        if audio.ndim != 1 or audio.size < needed:
            raise ValueError(
                f"{args.audio} holds {audio.shape} samples; {blocks * block} frames need a 1-D "
                f"waveform of at least {needed} samples ({SAMPLES_PER_FRAME} per frame)"
            )
        conditions = [audio[i * chunk : (i + 1) * chunk] for i in range(blocks)]
    else:
        if args.actions is None:
            raise ValueError(f"{args.model} is a world-model student: pass --actions")
        actions = np.load(args.actions, allow_pickle=False)
        actions = actions["cond"] if args.actions.suffix == ".npz" else actions
        dim = student.cond_dim
        if actions.ndim != 2 or actions.shape[1] != dim or len(actions) < blocks * block:
            raise ValueError(
                f"{args.actions} has shape {actions.shape}; {blocks * block} frames need "
                f"({blocks * block}, {dim}) actions (one per generated frame)"
            )
        conditions = [actions[i * block : (i + 1) * block] for i in range(blocks)]
    context = default_context(
        config.source,
        student.model.config.context_frames,
        student.model.config.frame_size,
        args.seed,
        args.context,
    )
    overrides = {
        k: v
        for k, v in (
            ("steps", args.steps),
            ("first_block_steps", args.first_block_steps),
            ("window_frames", args.window),
        )
        if v is not None
    }
    stream_config = dataclasses.replace(config.stream, **overrides)
    frames = list(context)
    start = time.perf_counter()
    for new_frames in stream_frames(
        student, context, conditions, stream_config, sink=not args.no_sink, seed=args.seed
    ):
        frames.extend(new_frames)
    seconds = time.perf_counter() - start
    fps = float(student.meta["dataset"].get("fps", 10.0))
    write_video(args.out, frames[: len(context) + args.frames], fps=fps)
    print(
        f"{args.frames} frames in {seconds:.2f} s "
        f"({1e3 * seconds / (blocks * block):.1f} ms/frame) -> {args.out}"
    )
    return 0
