"""The demo pipeline: the README's commands, run in order into one output folder.

Every stage is one or more ``robodistill`` command lines (printed before they run, so a user
can copy any of them), built from a :class:`DemoConfig` read from a ``policies/demo/``
recipe. A finished stage leaves ``<out>/stages/<name>.json`` (its commands and wall time) and
is reused when the demo runs again; an unfinished one simply re-runs its commands, and
training commands resume from their last checkpoint, so a killed demo picks up where it was.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from robodistill.files import write_json_atomic

TASK = "push"


@dataclass(frozen=True)
class DemoConfig:
    """How big each stage is; ``policies/demo/default.toml`` is the README's main job."""

    episodes: int = 60
    """Expert demos collected for every policy that learns from data."""
    eval_episodes: int = 20
    """Seeded evaluation episodes per policy or method."""
    teacher_recipe: str = "diffusion/push_demo"
    sdp_recipe: str = "sdp/push_demo"
    student_recipe: str = "consistency/push_demo"
    rpd_recipe: str = "rpd/demo"
    """Refined Policy Distillation: a PPO student pulled toward the teacher's actions."""
    rti_steps: tuple[int, ...] = (2, 4)
    """RTI K' swept by the methods bench."""
    rti_schedule: int = 100
    """DDPM steps RTI takes its last K' from (at most the teacher's training steps)."""
    bound_samples: int = 8
    """Training windows for RTI's Lipschitz bound."""
    lerobot_nfe: tuple[int, ...] = (10,)
    """Denoising steps at which the teacher is timed against lerobot's DiffusionPolicy."""
    loop_hz: float = 100.0
    loop_seconds: float = 10.0
    video_clips: int = 60
    video_frames: int = 24
    video_teacher_recipe: str = "video/push_world_demo"
    video_student_recipe: str = "video/push_world_causal_demo"


Commands = list[list[str]]


@dataclass(frozen=True)
class Stage:
    """One demo step: ``commands(config, out)`` gives the command lines it runs."""

    name: str
    description: str
    commands: Callable[[DemoConfig, Path], Commands]


def _paths(out: Path) -> dict[str, str]:
    names = {
        "data": "data/push",
        "teacher": "runs/teacher",
        "sdp": "runs/sdp",
        "student": "runs/student",
        "rpd": "runs/rpd",
        "video_data": "data/video_push",
        "video_teacher": "runs/video_teacher",
        "video_student": "runs/video_student",
    }
    return {key: str(out / rel) for key, rel in names.items()}


def _collect(c: DemoConfig, out: Path) -> Commands:
    root = _paths(out)["data"]
    return [["collect", "--task", TASK, "--episodes", str(c.episodes), "--root", root]]


def _eval(policy: str, name: str, c: DemoConfig, out: Path) -> list[str]:
    return [
        "eval", "--task", TASK, "--policy", policy, "--episodes", str(c.eval_episodes),
        "--json", str(out / "eval" / f"{name}.json"),
        "--video", str(out / "videos" / f"{name}.mp4"),
    ]  # fmt: skip


def _teacher(c: DemoConfig, out: Path) -> Commands:
    p = _paths(out)
    train = ["train", "--recipe", c.teacher_recipe, "--dataset", p["data"], "--out", p["teacher"]]
    return [train, _eval(p["teacher"], "teacher", c, out)]


def _sdp(c: DemoConfig, out: Path) -> Commands:
    p = _paths(out)
    return [["train", "--recipe", c.sdp_recipe, "--dataset", p["data"], "--out", p["sdp"]]]


def _student(c: DemoConfig, out: Path) -> Commands:
    p = _paths(out)
    distill = ["distill", "--teacher", p["teacher"], "--recipe", c.student_recipe]
    return [[*distill, "--out", p["student"]]]


def _rpd(c: DemoConfig, out: Path) -> Commands:
    p = _paths(out)
    refine = ["refine", "rpd", "--teacher", p["teacher"], "--task", TASK, "--recipe", c.rpd_recipe]
    return [[*refine, "--out", p["rpd"]], _eval(p["rpd"], "rpd", c, out)]


def _methods(c: DemoConfig, out: Path) -> Commands:
    p = _paths(out)
    rti = [f"rti_k{k}_{mode}" for k in c.rti_steps for mode in ("asis", "renoise")]
    return [
        [
            "bench", "methods", "--task", TASK, "--teacher", p["teacher"], "--sdp", p["sdp"],
            "--consistency", p["student"], "--episodes", str(c.eval_episodes),
            "--latency-episodes", "1", "--rti-steps", *map(str, c.rti_steps),
            "--rti-schedule", str(c.rti_schedule),
            "--bound-samples", str(c.bound_samples),
            "--only", "ddim10", *rti, "sdp_h2", "cp_1step", "cp_3step",
            "--json", str(out / "bench" / "methods.json"),
        ]
    ]  # fmt: skip


def _lerobot(c: DemoConfig, out: Path) -> Commands:
    return [
        [
            "bench", "policy", "--policy", _paths(out)["teacher"], "--baseline",
            "lerobot-diffusion", "--nfe", *map(str, c.lerobot_nfe), "--chunks", "20",
            "--json", str(out / "bench" / "latency.json"),
        ]
    ]  # fmt: skip


def _loop(c: DemoConfig, out: Path) -> Commands:
    return [
        [
            "bench", "loop", "--policy", _paths(out)["student"], "--hz", str(c.loop_hz),
            "--seconds", str(c.loop_seconds), "--out", str(out / "bench" / "loop"),
        ]
    ]  # fmt: skip


def _video(c: DemoConfig, out: Path) -> Commands:
    p = _paths(out)
    heldout = f"{p['video_data']}/clips/clip_{c.video_clips - 1:05d}.npz"  # its actions drive
    return [
        [
            "video", "data", "--source", "push", "--clips", str(c.video_clips),
            "--frames", str(c.video_frames), "--root", p["video_data"],
        ],
        [
            "video", "train-teacher", "--recipe", c.video_teacher_recipe,
            "--root", p["video_data"], "--out", p["video_teacher"],
        ],
        [
            "video", "distill", "--teacher", p["video_teacher"],
            "--recipe", c.video_student_recipe, "--out", p["video_student"],
        ],
        [
            "video", "stream", "--model", p["video_student"], "--actions", heldout,
            "--context", heldout, "--frames", str(c.video_frames),
            "--out", str(out / "videos" / "world_model_stream.mp4"),
        ],
        [
            "bench", "video", "--teacher", p["video_teacher"], "--student", p["video_student"],
            "--windows", "4", "--long-streams", "1", "--repeats", "2",
            "--json", str(out / "bench" / "video.json"),
        ],
    ]  # fmt: skip


def _expert(c: DemoConfig, out: Path) -> Commands:
    return [_eval("expert", "expert", c, out)]


def _report(c: DemoConfig, out: Path) -> Commands:
    return [["report", str(out)]]


STAGES: list[Stage] = [
    Stage("tasks", "list the tasks", lambda c, out: [["envs"]]),
    Stage("collect", "record expert demos of push as a LeRobotDataset", _collect),
    Stage("expert", "evaluate the scripted expert", _expert),
    Stage("teacher", "train the diffusion-policy teacher and evaluate it", _teacher),
    Stage("sdp", "train a Streaming Diffusion Policy (variable noise)", _sdp),
    Stage("student", "distil the teacher into a consistency student", _student),
    Stage("rpd", "refine with RL (PPO) guided by the teacher (RPD)", _rpd),
    Stage("methods", "teacher vs RTI vs SDP vs student: success, NFE, latency", _methods),
    Stage("lerobot", "the teacher's latency against lerobot's DiffusionPolicy", _lerobot),
    Stage("loop", "the student in a fixed-rate control loop through the runtime", _loop),
    Stage("video", "world model: bidirectional teacher -> causal streaming student", _video),
    Stage("report", "one HTML + Markdown report of every result", _report),
]  # fmt: skip
"""The pipeline, in order; ``--skip`` takes these names."""


def run_demo(config: DemoConfig, out: Path, skip: frozenset[str] = frozenset()) -> dict:
    """Run every stage not in ``skip``; stages with a record in ``out/stages`` are reused.

    Returns ``{stage: record}`` of the finished stages. A failing command raises
    ``RuntimeError`` naming it; re-running the demo resumes from that stage.
    """
    from robodistill.cli import main as cli_main

    for i, stage in enumerate(STAGES, 1):
        record_path = out / "stages" / f"{stage.name}.json"
        header = f"[{i}/{len(STAGES)}] {stage.name}: {stage.description}"
        if stage.name in skip:
            print(f"{header} -- skipped", flush=True)
            continue
        if record_path.exists():
            print(f"{header} -- done before, reusing {record_path}", flush=True)
            continue
        print(header, flush=True)
        start = time.perf_counter()
        commands = stage.commands(config, out)
        for argv in commands:
            line = shlex.join(["robodistill", *argv])
            print(f"$ {line}", flush=True)
            code = cli_main(argv)
            if code:
                raise RuntimeError(f"demo stage {stage.name!r}: `{line}` exited with {code}")
        record = {"commands": [shlex.join(["robodistill", *a]) for a in commands]}
        record["seconds"] = round(time.perf_counter() - start, 1)
        write_json_atomic(record_path, record)
    records = {p.stem: json.loads(p.read_text()) for p in sorted((out / "stages").glob("*.json"))}
    total = sum(r["seconds"] for r in records.values())
    print(f"demo outputs in {out} ({total / 60:.1f} min of stages); report: {out}/report.html")
    return records
