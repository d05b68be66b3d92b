"""Causal video distillation: masks, KV cache, streaming, errors, tiny end-to-end runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from robodistill.checkpoint import CheckpointError
from robodistill.cli import main
from robodistill.video.checkpoints import STUDENT, TEACHER, load_video_checkpoint
from robodistill.video.config import (
    DistillTrainConfig,
    StreamConfig,
    TeacherTrainConfig,
    VideoModelConfig,
    VideoStudentConfig,
    VideoTeacherConfig,
)
from robodistill.video.data import SAMPLES_PER_FRAME, audio_features, avatar_clip
from robodistill.video.distill import dmd_loss, ode_regression_loss, teacher_forcing_layout
from robodistill.video.model import VideoDiT, block_causal_mask
from robodistill.video.stream import VideoStream, stream_cache
from robodistill.video.teacher import train_teacher

CONFIG = VideoModelConfig(dim=32, depth=2, heads=2, clip_frames=6, context_frames=2)


def random_model(seed: int = 0, cond_dim: int = 2) -> VideoDiT:
    """A tiny DiT with every weight random (the zero-initialised adaLN would hide bugs)."""
    torch.manual_seed(seed)
    model = VideoDiT(CONFIG, cond_dim).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.1)
    return model


def inputs(frames: int = 6, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(batch, frames, 3, 32, 32), torch.randn(batch, frames, 2)


@torch.no_grad()
def test_block_causal_mask_hides_the_future() -> None:
    model = random_model()
    x, cond = inputs()
    t = torch.rand(2, 6)
    mask = block_causal_mask(6, context_frames=2, block_frames=2)
    changed = x.clone()
    changed[:, 4:] += 1.0  # the last block only
    causal, causal_changed = model(x, t, cond, mask), model(changed, t, cond, mask)
    torch.testing.assert_close(causal[:, :4], causal_changed[:, :4])
    assert not torch.allclose(causal[:, 4:], causal_changed[:, 4:])
    bidirectional = model(x, t, cond) - model(changed, t, cond)
    assert bidirectional[:, :4].abs().max() > 1e-3  # the teacher does see the future


@torch.no_grad()
def test_kv_cached_blocks_equal_full_causal_forward() -> None:
    model = random_model()
    x, cond = inputs()
    t = torch.zeros(2, 6)
    t[:, 4:] = 0.7  # clean past, the last block noisy: what the cache sees when streaming
    full = model(x, t, cond, block_causal_mask(6, 2, 2))
    cache = model.new_cache(0, 6)
    model.forward_cached(x[:, :2], t[:, :2], cond[:, :2], cache, write_frames=2)
    block1 = model.forward_cached(x[:, 2:4], t[:, 2:4], cond[:, 2:4], cache, write_frames=2)
    block2 = model.forward_cached(x[:, 4:], t[:, 4:], cond[:, 4:], cache)
    torch.testing.assert_close(block1, full[:, 2:4], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(block2, full[:, 4:], atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_fused_write_pass_equals_write_then_denoise() -> None:
    """Writing block b in block b+1's first pass gives the same outputs and cache, also rolling."""
    model = random_model()
    clean, cond = inputs(frames=12)
    noisy = torch.randn_like(clean)
    t = torch.full((2, 2), 0.6)
    for sink, window in ((0, 4), (2, 2)):  # no eviction / eviction at every block
        separate, fused = model.new_cache(sink, window), model.new_cache(sink, window)
        model.forward_cached(clean[:, :2], torch.zeros(2, 2), cond[:, :2], separate, write_frames=2)
        done = slice(0, 2)
        for start in range(2, 12, 2):
            new = slice(start, start + 2)
            if start > 2:
                model.forward_cached(
                    clean[:, done], torch.zeros(2, 2), cond[:, done], separate, write_frames=2
                )
            expected = model.forward_cached(noisy[:, new], t, cond[:, new], separate)
            levels = torch.cat([torch.zeros(2, 2), t], dim=1)
            got = model.forward_cached(
                torch.cat([clean[:, done], noisy[:, new]], 1),
                levels,
                torch.cat([cond[:, done], cond[:, new]], 1),
                fused,
                write_frames=2,
            )[:, 2:]
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
            done = new
        assert fused.frames == separate.frames and fused.written == separate.written
        torch.testing.assert_close(fused.keys[-1], separate.keys[-1], atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_teacher_forcing_layout_equals_cached_inference() -> None:
    """The ODE stage's [clean | noisy] sequence sees exactly what the KV cache would."""
    model = random_model()
    clean, cond = inputs()
    noisy = torch.randn(2, 4, 3, 32, 32)
    t_noisy = torch.tensor([[0.5, 0.5, 0.25, 0.25]]).expand(2, -1)
    mask, positions = teacher_forcing_layout(6, 2, 2)
    t = torch.cat([torch.zeros(2, 6), t_noisy], dim=1)
    v = model(torch.cat([clean, noisy], 1), t, torch.cat([cond, cond[:, 2:]], 1), mask, positions)
    cache = model.new_cache(0, 6)
    model.forward_cached(clean[:, :2], torch.zeros(2, 2), cond[:, :2], cache, write_frames=2)
    for b in range(2):
        frames = slice(2 + 2 * b, 4 + 2 * b)
        noisy_b = noisy[:, 2 * b : 2 * b + 2]
        cached = model.forward_cached(
            noisy_b, t_noisy[:, 2 * b : 2 * b + 2], cond[:, frames], cache
        )
        torch.testing.assert_close(cached, v[:, 6 + 2 * b : 8 + 2 * b], atol=1e-5, rtol=1e-4)
        model.forward_cached(
            clean[:, frames], torch.zeros(2, 2), cond[:, frames], cache, write_frames=2
        )


@torch.no_grad()
def test_rolling_cache_keeps_the_sink_and_a_constant_size() -> None:
    model = random_model()
    cache = model.new_cache(sink_frames=2, window_frames=2)
    x, cond = inputs(frames=2)
    model.forward_cached(x, torch.zeros(2, 2), cond, cache, write_frames=2)
    sink_keys = cache.keys[0][:, :, : 2 * model.tokens_per_frame].clone()
    for _ in range(10):  # 20 frames, far beyond the 6 positions trained on
        model.forward_cached(torch.randn_like(x), torch.zeros(2, 2), cond, cache, write_frames=2)
        assert cache.frames <= 4
    assert cache.written == 22 and cache.frames == 4
    torch.testing.assert_close(cache.keys[0][:, :, : 2 * model.tokens_per_frame], sink_keys)


def test_bad_condition_shapes_raise() -> None:
    model = random_model()
    x, cond = inputs()
    with pytest.raises(ValueError, match="conditions must be"):
        model(x, torch.zeros(2, 6), cond[..., :1])
    with pytest.raises(ValueError, match="noise levels"):
        model(x, torch.zeros(2, 5), cond)
    with pytest.raises(ValueError, match="exceed the 6 frames"):
        model(torch.randn(1, 8, 3, 32, 32), torch.zeros(1, 8), torch.zeros(1, 8, 2))
    with pytest.raises(ValueError, match="resample it to 8000 Hz"):
        audio_features(np.zeros(SAMPLES_PER_FRAME), sample_rate=16_000)
    with pytest.raises(ValueError, match="multiple of"):
        audio_features(np.zeros(SAMPLES_PER_FRAME + 3))


def test_cache_asked_for_more_context_than_trained_raises() -> None:
    model = random_model()
    with pytest.raises(ValueError, match="lower window_frames to <= 2"):
        stream_cache(model, 2, StreamConfig(sink_frames=2, window_frames=6), sink=True)
    cache = model.new_cache(0, 6)
    x, cond = inputs(frames=4, batch=1)
    model.forward_cached(x, torch.zeros(1, 4), cond, cache, write_frames=4)
    with pytest.raises(ValueError, match="sink_frames \\+ window_frames <= 3"):
        model.forward_cached(x[:, :3], torch.zeros(1, 3), cond[:, :3], cache)


def test_ode_regression_steps_reduce_the_loss() -> None:
    torch.manual_seed(0)
    model = VideoDiT(CONFIG, cond_dim=2)
    config = VideoStudentConfig(block_frames=2, student_steps=4, model=CONFIG)
    x0, cond = inputs()
    xt = torch.randn(2, 4, 6, 3, 32, 32)
    xt[:, :, :2] = x0[:, None, :2]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        torch.manual_seed(1)  # the same grid points every step
        loss = ode_regression_loss(model, x0, xt, cond, config)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < 0.97 * losses[0]


def test_dmd_gradient_points_from_fake_to_real() -> None:
    """∇_x L_G equals (μ_fake - μ_real) / mean|x - μ_real| / numel: the DMD direction."""
    real, fake = random_model(1), random_model(2)
    x = torch.randn(1, 6, 3, 32, 32, requires_grad=True)
    cond = torch.randn(1, 6, 2)
    torch.manual_seed(3)
    loss, _ = dmd_loss(x, cond, real, fake, 2, (0.5, 0.5))
    loss.backward()
    torch.manual_seed(3)
    torch.empty(1).uniform_(0.5, 0.5)  # dmd_loss draws t first, then ε
    t = torch.full((1, 6), 0.5)
    t[:, :2] = 0
    noise = torch.randn_like(x)
    with torch.no_grad():
        x_t = (1 - t[..., None, None, None]) * x + t[..., None, None, None] * noise
        mu_real = x_t - t[..., None, None, None] * real(x_t, t, cond)
        mu_fake = x_t - t[..., None, None, None] * fake(x_t, t, cond)
        g = (mu_fake - mu_real) / (x - mu_real)[:, 2:].abs().mean()
    torch.testing.assert_close(x.grad[:, 2:], g[:, 2:] / g[:, 2:].numel(), atol=1e-7, rtol=1e-3)
    assert x.grad[:, :2].abs().max() == 0  # context frames are given, not generated


def test_avatar_mouth_follows_the_audio() -> None:
    from robodistill.video.metrics import MouthGauge

    clip = avatar_clip(seed=5, frames=48, size=32)
    assert clip["cond"].shape == (48, 16) and clip["audio"].shape == (48 * SAMPLES_PER_FRAME,)
    gauge = MouthGauge.fit(clip["frames"], clip["mouth"])
    assert np.abs(gauge(clip["frames"]) - clip["mouth"]).mean() < 0.05
    loudness = clip["cond"].max(axis=1)
    assert np.corrcoef(loudness, clip["mouth"])[0, 1] > 0.5


def test_teacher_resume_after_kill_equals_uninterrupted(tmp_path: Path) -> None:
    from robodistill.video.data import write_clips

    root = write_clips("avatar", tmp_path / "data", clips=4, frames=10, progress=False)
    config = VideoTeacherConfig(
        source="avatar",
        model=VideoModelConfig(dim=32, depth=1, heads=2, clip_frames=5, context_frames=1),
        train=TeacherTrainConfig(steps=4, batch_size=2, warmup_steps=1, checkpoint_every=2),
    )
    train_teacher(config, root, tmp_path / "killed", stop_after=2)
    resumed = train_teacher(config, root, tmp_path / "killed")
    straight = train_teacher(config, root, tmp_path / "straight")
    for a, b in zip(resumed.parameters(), straight.parameters()):
        torch.testing.assert_close(a, b)
    assert (tmp_path / "killed" / "loss.png").exists()


@pytest.fixture(scope="module")
def push_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data -> teacher -> student with the tiny recipes, through the CLI."""
    tmp = tmp_path_factory.mktemp("video_push")
    assert main(["video", "data", "--source", "push", "--clips", "3", "--frames", "12",
                 "--root", str(tmp / "data")]) == 0  # fmt: skip
    assert main(["video", "train-teacher", "--recipe", "video/tiny", "--root", str(tmp / "data"),
                 "--out", str(tmp / "teacher")]) == 0  # fmt: skip
    assert main(["video", "distill", "--teacher", str(tmp / "teacher"), "--recipe",
                 "video/tiny_causal", "--out", str(tmp / "student")]) == 0  # fmt: skip
    return tmp


def test_student_checkpoint_is_not_a_teacher(push_runs: Path, capsys) -> None:
    with pytest.raises(CheckpointError, match="train-teacher"):
        load_video_checkpoint(push_runs / "student", TEACHER)
    assert main(["video", "distill", "--teacher", str(push_runs / "student"), "--recipe",
                 "video/tiny_causal", "--out", str(push_runs / "x")]) == 2  # fmt: skip
    assert "video_student" in capsys.readouterr().err
    student = load_video_checkpoint(push_runs / "student", STUDENT)
    assert (
        student.config.model == load_video_checkpoint(push_runs / "teacher", TEACHER).config.model
    )
    assert (push_runs / "student" / "ode_init" / "model.safetensors").exists()


def test_stream_cli_and_generator_api(push_runs: Path, tmp_path: Path) -> None:
    actions = np.random.default_rng(0).uniform(-1, 1, (20, 2)).astype(np.float32)
    np.save(tmp_path / "actions.npy", actions)
    out = tmp_path / "stream.mp4"
    stream = ["video", "stream", "--model", str(push_runs / "student"), "--out", str(out),
              "--actions", str(tmp_path / "actions.npy")]  # fmt: skip
    assert main([*stream, "--frames", "20"]) == 0
    assert out.stat().st_size > 0
    assert main([*stream, "--frames", "40"]) == 2  # more frames than actions

    student = load_video_checkpoint(push_runs / "student", STUDENT)
    stream = VideoStream(student, np.zeros((2, 32, 32, 3), np.uint8))
    frames = [stream.step(actions[2 * i : 2 * i + 2]) for i in range(10)]  # 20 frames > T = 6
    assert all(f.shape == (2, 32, 32, 3) and f.dtype == np.uint8 for f in frames)
    assert stream.cache.frames == 4  # sink 2 + window 2: constant cost per frame
    with pytest.raises(ValueError, match="actions of shape \\(2, 2\\)"):
        stream.step(actions[:3])
    with pytest.raises(ValueError, match="lower window_frames"):
        VideoStream(student, np.zeros((2, 32, 32, 3), np.uint8), StreamConfig(window_frames=9))


def test_bench_video(push_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "video.json"
    assert main(["bench", "video", "--teacher", str(push_runs / "teacher"), "--student",
                 str(push_runs / "student"), "--json", str(out), "--windows", "2",
                 "--long-factor", "2", "--long-streams", "1", "--repeats", "1"]) == 0  # fmt: skip
    result = json.loads(out.read_text())
    assert result["latency"]["per_frame_speedup"]["steps1"] > 0
    assert {"teacher", "ode_init", "dmd"} <= set(result["quality"])
    assert len(result["drift"]["sink"]["per_frame"]["psnr"]) == result["drift"]["frames"] - 2
    assert (tmp_path / "video_drift.png").exists() and (tmp_path / "video_long.mp4").exists()


def test_avatar_pipeline_streams_audio(tmp_path: Path) -> None:
    root = tmp_path / "data"
    assert main(["video", "data", "--source", "avatar", "--clips", "4", "--frames", "10",
                 "--root", str(root)]) == 0  # fmt: skip
    assert main(["video", "train-teacher", "--recipe", "video/tiny_avatar", "--root", str(root),
                 "--out", str(tmp_path / "teacher")]) == 0  # fmt: skip
    assert main(["video", "distill", "--teacher", str(tmp_path / "teacher"), "--recipe",
                 "video/tiny_avatar_causal", "--out", str(tmp_path / "student")]) == 0  # fmt: skip
    student = load_video_checkpoint(tmp_path / "student", STUDENT)
    clip = avatar_clip(seed=1, frames=8, size=32)
    stream = VideoStream(student, clip["reference"][None])
    block = stream.step(clip["audio"][: 2 * SAMPLES_PER_FRAME])
    assert block.shape == (2, 32, 32, 3)
    with pytest.raises(ValueError, match="resample to 8000 Hz"):
        stream.step(clip["audio"][: 2 * SAMPLES_PER_FRAME - 10])
    np.save(tmp_path / "audio.npy", clip["audio"])
    assert main(["video", "stream", "--model", str(tmp_path / "student"), "--audio",
                 str(tmp_path / "audio.npy"), "--sample-rate", "16000", "--frames", "8",
                 "--out", str(tmp_path / "a.mp4")]) == 2  # fmt: skip
    assert main(["video", "stream", "--model", str(tmp_path / "student"), "--audio",
                 str(tmp_path / "audio.npy"), "--frames", "8", "--out",
                 str(tmp_path / "a.mp4")]) == 0  # fmt: skip


def test_distill_config_must_fit_the_teacher(push_runs: Path) -> None:
    config = VideoStudentConfig(block_frames=3, train=DistillTrainConfig(ode_steps=1, dmd_steps=0))
    with pytest.raises(ValueError, match="block_frames 3 must divide"):
        from robodistill.video.distill import distill

        distill(config, push_runs / "teacher", push_runs / "bad")
