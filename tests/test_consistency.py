"""Consistency students and the EDM teacher: the paper's identities, distillation, loading,
exact resume and the errors raised before any training starts."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_data import FEATURE_SHAPES, make_dataset, state_obs, tiny_config

from robodistill.checkpoint import Checkpoint, CheckpointError, read_checkpoint, save_checkpoint
from robodistill.commands import distill as distill_command
from robodistill.configs import ConfigError
from robodistill.data.loading import DatasetError
from robodistill.diffusion.config import UnetConfig
from robodistill.diffusion.policy import DiffusionModel
from robodistill.diffusion.sampler import make_noise_scheduler
from robodistill.diffusion.train import train as train_ddpm
from robodistill.policy import load_policy
from robodistill.recipes import load_recipe
from robodistill.students.consistency import (
    ConsistencyConfig,
    ConsistencyModel,
    ConsistencySampler,
    Teacher,
    ctm_jump,
    load_teacher,
)
from robodistill.students.distill import distill, resolve_config
from robodistill.students.edm import (
    EdmConfig,
    EdmNoiseConfig,
    edm_denoise,
    heun_step,
    karras_sigmas,
)
from robodistill.students.edm import train as train_edm

torch.set_num_threads(1)  # tiny models: threads only add overhead on a shared 2-core CPU


def student_config(**train_overrides) -> ConsistencyConfig:
    config = load_recipe("consistency/tiny", ConsistencyConfig)
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **train_overrides))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "toy", num_episodes=4, episode_len=20)


@pytest.fixture(scope="module")
def edm_teacher(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("edm") / "teacher"
    config = load_recipe("edm/tiny", EdmConfig)
    train_edm(
        dataclasses.replace(config, train=dataclasses.replace(config.train, steps=30)), dataset, out
    )
    return out


@pytest.fixture(scope="module")
def ddpm_teacher(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddpm") / "teacher"
    train_ddpm(tiny_config(steps=30), dataset, out)
    return out


# ---------------------------------------------------------------- identities of the method


def test_karras_grid_and_heun_are_exact_on_a_point_mass():
    cfg = EdmNoiseConfig(sigma_min=0.02, sigma_max=80.0, rho=7.0)
    grid = karras_sigmas(80, cfg)
    assert grid[0].item() == pytest.approx(80.0) and grid[-1].item() == pytest.approx(0.02)
    assert torch.all(grid[1:] < grid[:-1])
    # data = a single chunk a: D(x; σ) = a and the ODE is x(σ) = a + (σ/t)(x_t − a)
    a = torch.randn(3, 8, 2)
    x = torch.randn(3, 8, 2) * 5
    t, u = torch.full((3,), 5.0), torch.tensor([2.0, 1.0, 0.0])
    x_u = heun_step(lambda x, sigma: a, x, t, u, sigma_floor=0.0)
    torch.testing.assert_close(x_u, a + (u / t).reshape(-1, 1, 1) * (x - a))


def test_heun_step_into_sigma_min_is_euler_under_the_boundary_parameterization():
    # a point mass a, with D(x; σ_min) = x as the boundary-condition preconditioning forces
    sigma_min, f64 = 0.02, torch.float64  # float64: x is ~80, the check is exact arithmetic
    a, x = torch.randn(2, 8, 2, dtype=f64), torch.randn(2, 8, 2, dtype=f64) * 80

    def denoise(x, sigma):
        return torch.where((sigma <= sigma_min).reshape(-1, 1, 1), x, a)

    t, u = torch.full((2,), 80.0, dtype=f64), torch.full((2,), sigma_min, dtype=f64)
    got = heun_step(denoise, x, t, u, sigma_floor=sigma_min)
    torch.testing.assert_close(got, a + (sigma_min / 80.0) * (x - a))  # the exact ODE solution
    # a Heun correction with D's forced slope 0 at σ_min
    halfway = heun_step(denoise, x, t, u, sigma_floor=0.0)
    assert (halfway - a).abs().mean() > 100 * (got - a).abs().mean()


def test_boundary_conditions_hold_by_construction():
    config = resolve_config(student_config(), _fake_teacher())
    model = ConsistencyModel(config, FEATURE_SHAPES).eval()
    for p in model.unet.parameters():  # any weights: the identities do not depend on them
        torch.nn.init.normal_(p)
    x, cond = torch.randn(4, 8, 2), torch.randn(4, model.encoder.feature_dim * 2)
    t = torch.tensor([80.0, 3.0, 0.5, 0.1])
    torch.testing.assert_close(ctm_jump(model.unet, x, t, t, cond, config.noise), x)  # G(x,t,t)
    sigma_min = torch.full((4,), config.noise.sigma_min)
    got = ctm_jump(model.unet, x, sigma_min, sigma_min, cond, config.noise)
    torch.testing.assert_close(got, x)  # f(x, σ_min) = x


def test_student_starts_as_one_euler_step_of_the_edm_teacher(edm_teacher):
    noise = load_recipe("consistency/tiny", ConsistencyConfig).noise
    teacher = load_teacher(edm_teacher, noise)
    config = resolve_config(student_config(), teacher)
    model = ConsistencyModel(config, FEATURE_SHAPES).eval()
    model.init_from_teacher(teacher.model, same_unet=True)
    x, cond = torch.randn(4, 8, 2) * 3, torch.randn(4, model.encoder.feature_dim * 2)
    t, s = torch.tensor([80.0, 5.0, 1.0, 0.3]), torch.tensor([10.0, 0.02, 0.5, 0.1])
    denoised = edm_denoise(teacher.model.unet, x, t, cond, teacher.noise)
    ratio = (s / t).reshape(-1, 1, 1)
    expected = ratio * x + (1 - ratio) * denoised
    torch.testing.assert_close(ctm_jump(model.unet, x, t, s, cond, config.noise), expected)


def test_ddpm_teacher_is_the_exact_sigma_conversion(ddpm_teacher):
    teacher = load_teacher(ddpm_teacher, EdmNoiseConfig())
    scheduler = make_noise_scheduler(teacher.config.noise, "ddpm")
    alphas = scheduler.alphas_cumprod  # ᾱ_k
    k = torch.tensor([0, 5, 12, 19])
    sigma = ((1 - alphas[k]) / alphas[k]).sqrt()
    torch.testing.assert_close(teacher.timestep(sigma), k.float(), atol=1e-4, rtol=0)
    x_k, cond = torch.randn(4, 8, 2), torch.randn(4, 32)
    eps = teacher.model.unet(x_k, k, cond)
    root = alphas[k].sqrt().reshape(-1, 1, 1)
    x0 = (x_k - (1 - alphas[k]).sqrt().reshape(-1, 1, 1) * eps) / root  # DDPM's x0 estimate
    torch.testing.assert_close(teacher.denoise(x_k / root, sigma, cond), x0, atol=1e-4, rtol=1e-4)
    # the student's grid is clipped to the σ range the DDPM covers
    assert teacher.noise.sigma_min == pytest.approx(
        ((1 - alphas[0]) / alphas[0]).sqrt().item(), rel=1e-5
    )


def test_multistep_sampling_uses_the_papers_chaining_bins():
    cfg = EdmNoiseConfig(num_bins=80)
    grid = karras_sigmas(80, cfg)
    torch.testing.assert_close(ConsistencySampler(cfg, 3).levels, grid[[0, 27, 54]])
    torch.testing.assert_close(ConsistencySampler(cfg, 2).levels, grid[[0, 40]])
    with pytest.raises(ValueError, match="num_inference_steps"):
        ConsistencySampler(cfg, 0)


# ---------------------------------------------------------------- distillation end to end


def test_edm_teacher_trains_and_samples_with_heun(edm_teacher):
    assert read_checkpoint(edm_teacher).method == "edm"
    policy = load_policy(edm_teacher, num_inference_steps=3)
    chunk = policy.new_rollout(2).predict_action_chunk(state_obs(2))
    assert chunk.shape == (2, 8, 2) and np.isfinite(chunk).all()
    with pytest.raises(ValueError, match="Heun"):
        load_policy(edm_teacher, scheduler="ddim")


def test_distilled_student_loads_and_acts_like_the_teacher(ddpm_teacher, tmp_path):
    out = tmp_path / "student"
    args = argparse.ArgumentParser()
    distill_command.add_arguments(args)
    namespace = args.parse_args(
        [
            "--teacher",
            str(ddpm_teacher),
            "--recipe",
            "consistency/tiny",
            "--out",
            str(out),
            "--steps",
            "20",
        ]
    )
    assert distill_command.run(namespace) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"loss", "ctm", "dsm", "lr"} <= set(rows[-1]) and (out / "loss.png").is_file()
    saved = read_checkpoint(out)
    assert saved.method == "consistency" and saved.config["teacher_method"] == "diffusion"
    teacher_info = load_policy(ddpm_teacher).info
    for steps in (1, 2, 3):
        policy = load_policy(out, task="push", num_inference_steps=steps)
        assert policy.info == teacher_info  # same To, Tp, Ta: the teacher's rollout
        rollout = policy.new_rollout(3, seed=0)
        actions = [rollout.select_action(state_obs(3)) for _ in range(5)]
        assert actions[0].shape == (3, 2) and np.all(np.abs(actions) <= 1.0 + 1e-6)
    with pytest.raises(ValueError, match="--steps"):
        load_policy(out, scheduler="ddpm")


def test_killed_distillation_resumes_exactly(edm_teacher, tmp_path):
    config = student_config(steps=12, checkpoint_every=6, log_every=3)
    distill(config, edm_teacher, tmp_path / "full")
    distill(config, edm_teacher, tmp_path / "resumed", stop_after=6)
    distill(config, edm_teacher, tmp_path / "resumed")
    full, resumed = read_checkpoint(tmp_path / "full"), read_checkpoint(tmp_path / "resumed")
    for key, value in full.state_dict.items():
        torch.testing.assert_close(resumed.state_dict[key], value, rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="another config"):
        distill(dataclasses.replace(config, dropout=0.3), edm_teacher, tmp_path / "full")


def test_small_student_trains_from_scratch_with_teacher_encoder(edm_teacher, tmp_path):
    small = UnetConfig(down_dims=(8, 16), diffusion_step_embed_dim=8, n_groups=4)
    config = dataclasses.replace(student_config(steps=2), unet=small)
    model = distill(config, edm_teacher, tmp_path / "small")
    teacher = load_teacher(edm_teacher, config.noise)
    for key, value in teacher.model.encoder.state_dict().items():
        torch.testing.assert_close(model.encoder.state_dict()[key], value)
    policy = load_policy(tmp_path / "small")
    assert policy.new_rollout(1).predict_action_chunk(state_obs(1)).shape == (1, 8, 2)


# ---------------------------------------------------------------- bad input, before training


def _fake_teacher():
    """An untrained EDM teacher in memory, enough for resolve_config."""
    config = load_recipe("edm/tiny", EdmConfig)
    model = DiffusionModel(config, FEATURE_SHAPES)
    meta = {
        "method": "edm",
        "feature_shapes": {k: list(v) for k, v in FEATURE_SHAPES.items()},
        "weights_sha256": "0" * 64,
    }
    ckpt = Checkpoint(path=Path("fake-teacher"), meta=meta, state_dict={})
    return Teacher(ckpt, config, model, config.noise, None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "reach"}, "task = 'reach' but the teacher's is 'push'"),
        ({"horizon": 16}, "horizon = 16 but the teacher's is 8"),
        ({"action_dim": 4}, "action_dim = 4 but the teacher's is 2"),
        ({"n_action_steps": 9}, "horizon"),
    ],
)
def test_student_recipe_that_disagrees_with_the_teacher_is_refused(change, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        resolve_config(dataclasses.replace(student_config(), **change), _fake_teacher())


def test_wrong_kind_of_teacher_is_refused_before_training(dataset, tmp_path):
    fake = save_checkpoint(
        tmp_path / "sdp",
        method="sdp",
        config=tiny_config(),
        state_dict={"w": torch.zeros(1)},
        task="push",
        obs_mode="state",
        feature_shapes=FEATURE_SHAPES,
        normalization={},
        dataset={"root": str(dataset)},
    )
    with pytest.raises(CheckpointError, match="'sdp' checkpoint, not a diffusion teacher"):
        distill(student_config(), fake, tmp_path / "out")
    with pytest.raises(CheckpointError, match="not a robodistill checkpoint"):
        distill(student_config(), dataset, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_dataset_of_another_task_is_refused(ddpm_teacher, tmp_path):
    other = make_dataset(tmp_path / "other", num_episodes=1, episode_len=5)
    (other / "meta" / "robodistill.json").write_text(json.dumps({"task": "reach"}))
    with pytest.raises(DatasetError, match="'reach' demos but the teacher was trained for 'push'"):
        distill(student_config(), ddpm_teacher, tmp_path / "out", dataset_root=other)
