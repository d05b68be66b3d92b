"""COMPASS (robodistill.compass): residual start, KL loss, descriptors, bad input, tiny pipeline."""

from __future__ import annotations

import hashlib
import json
import math
import shutil

import numpy as np
import pytest
import torch
from gymnasium import spaces

from robodistill.checkpoint import CheckpointError
from robodistill.cli import main
from robodistill.compass.config import BaseConfig, CompassConfig
from robodistill.compass.descriptor import check_descriptor, embodiment_descriptor
from robodistill.compass.model import BaseModel, SpecialistModel, gaussian_kl
from robodistill.compass.pipeline import run_pipeline
from robodistill.compass.residual import ResidualActorCritic
from robodistill.evaluation import EvalConfig, evaluate
from robodistill.policy import load_policy
from robodistill.recipes import load_recipe

FRAME, ACTION_DIM = 41, 3


def _base(seed: int = 0) -> BaseModel:
    torch.manual_seed(seed)
    return BaseModel(FRAME, ACTION_DIM, BaseConfig(n_obs_steps=2, latent_dim=8, hidden_dim=16))


def test_residual_starts_exactly_at_the_base():
    base = _base()
    specialist = SpecialistModel(base, init_std=0.1)
    history = torch.randn(5, 2, FRAME)
    mean, log_std = specialist.distribution(history)
    assert torch.equal(mean, base(history))
    assert torch.allclose(log_std, torch.full_like(log_std, math.log(0.1)))
    # the residual reads [z, ō]: its ō branch starts at zero, the rest copies the base head
    assert torch.equal(specialist.obs_branch.weight, torch.zeros_like(specialist.obs_branch.weight))
    assert torch.equal(specialist.residual[0].weight, base.head[0].weight)
    assert specialist.features(history).shape == (5, 8 + FRAME)

    obs_space = spaces.Box(-np.inf, np.inf, (2, FRAME), np.float32)
    act_space = spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
    policy = ResidualActorCritic(obs_space, act_space, lambda _: 3e-4, specialist=specialist)
    actions, values, _ = policy(history, deterministic=True)
    assert torch.equal(actions, base(history)) and values.shape == (5, 1)
    optimized = {id(p) for group in policy.optimizer.param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in specialist.base.parameters()}  # the base is frozen
    assert id(specialist.log_std) in optimized
    assert id(specialist.obs_branch.weight) in optimized
    assert policy.critic[0].in_features == 8 + FRAME  # V(z, ō)


def test_residual_uses_the_current_frame_once_trained():
    specialist = SpecialistModel(_base(), init_std=0.1)
    torch.nn.init.normal_(specialist.residual[-1].weight)
    torch.nn.init.normal_(specialist.obs_branch.weight)
    history = torch.randn(4, 2, FRAME)
    changed = history.clone()
    changed[:, -1, 0] += 1.0  # the current frame differs, the latent input is the same frames
    z, obs = specialist.inputs(history)
    assert torch.equal(obs, specialist.base.normalizer(history[:, -1]))
    hidden = specialist.residual[0](z) + specialist.obs_branch(obs)
    assert torch.allclose(specialist.residual_action(z, obs), specialist.residual[1:](hidden))
    assert not torch.equal(
        specialist.residual_action(z, obs),
        specialist.residual_action(z, specialist.inputs(changed)[1]),
    )


def test_kl_is_zero_for_equal_gaussians_and_positive_otherwise():
    mean, log_std = torch.randn(4, 3), torch.randn(4, 3) * 0.3
    assert torch.allclose(gaussian_kl(mean, log_std, mean, log_std), torch.zeros(4), atol=1e-6)
    other = gaussian_kl(mean, log_std, mean + 0.5, log_std - 0.2)
    assert torch.all(other > 0)
    teacher = torch.distributions.Normal(mean, log_std.exp())
    student = torch.distributions.Normal(mean + 0.5, (log_std - 0.2).exp())
    expected = torch.distributions.kl_divergence(teacher, student).sum(-1)
    assert torch.allclose(other, expected, atol=1e-5)


def test_descriptor_errors_name_the_fix():
    car = embodiment_descriptor("nav", "car")
    assert car.shape == (12,) and car[2] == 1.0
    with pytest.raises(ValueError, match=r"unknown embodiment 'tank'.*known"):
        embodiment_descriptor("nav", "tank")
    with pytest.raises(ValueError, match=r"has 5 values, but the generalist was trained on 12"):
        check_descriptor(np.zeros(5), 12, None)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from robodistill.data.collect import CollectConfig, collect

    root = tmp_path_factory.mktemp("compass")
    data = root / "demos"
    collect(CollectConfig(task="nav", embodiment="diff_drive", episodes=2, root=data, workers=1))
    out = root / "run"
    cfg = load_recipe("compass/tiny", CompassConfig)
    result = run_pipeline(cfg, data, out)
    return cfg, data, out, result


def test_tiny_pipeline_writes_loadable_checkpoints_that_evaluate(tiny_run):
    cfg, _, out, result = tiny_run
    assert set(result["specialists"]) == set(cfg.embodiments)
    dirs = [out / "base", out / "generalist", *(out / "specialists" / e for e in cfg.embodiments)]
    for name in [*cfg.embodiments, "car_large"]:  # car_large: held out, described by the spec
        for path in dirs:
            if "specialists" in str(path) and path.name != name:
                continue
            policy = load_policy(path, "nav", embodiment=name)
            assert policy.info.embodiment == name
            result = evaluate(policy, EvalConfig(task="nav", episodes=1, embodiment=name))
            assert result.episodes == 1 and 0.0 <= result.success_rate <= 1.0
    assert (out / "distill_rounds" / "round_00" / "config.json").is_file()
    dagger = json.loads((out / "logs" / "generalist" / "dagger.json").read_text())
    assert {r["round"] for r in dagger} == {0, 1}


def test_rerun_skips_finished_stages(tiny_run):
    _, data, out, _ = tiny_run
    weights = out / "generalist" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    args = ["refine", "compass", "--recipe", "compass/tiny", "--dataset", str(data)]
    assert main([*args, "--out", str(out)]) == 0
    assert weights.stat().st_mtime_ns == before


def test_bad_input_errors(tiny_run, capsys):
    cfg, data, out, _ = tiny_run
    car = out / "specialists" / "car"
    with pytest.raises(ValueError, match=r"specialist for 'car', not 'diff_drive'.*--embodiment"):
        load_policy(car, "nav", embodiment="diff_drive")
    with pytest.raises(ValueError, match=r"specialist for 'car', not 'diff_drive'"):
        run_pipeline(cfg, data, out, specialists={"diff_drive": car})
    with pytest.raises(ValueError, match=r"unknown embodiment 'tank'"):
        load_policy(out / "generalist", "nav", embodiment="tank")
    with pytest.raises(ValueError, match=r"has 3 values, but the generalist was trained on 12"):
        load_policy(out / "generalist").with_descriptor(np.zeros(3))
    bad = CompassConfig(task="nav", embodiments=["diff_drive", "tank"], base=cfg.base)
    with pytest.raises(ValueError, match=r"unknown embodiment 'tank'"):
        run_pipeline(bad, data, out / "never")
    assert not (out / "never").exists()  # refused before any training
    args = ["refine", "compass", "--recipe", "compass/tiny", "--dataset", str(data)]
    assert main([*args, "--out", str(out), "--specialist", "car"]) == 2
    assert "NAME=DIR" in capsys.readouterr().err


def test_old_specialist_checkpoint_says_to_rerun(tiny_run, tmp_path):
    from safetensors.torch import load_file, save_file

    _, _, out, _ = tiny_run
    old = tmp_path / "car"
    shutil.copytree(out / "specialists" / "car", old)
    weights = load_file(old / "model.safetensors")
    del weights["obs_branch.weight"]  # a specialist whose residual read only z
    save_file(weights, old / "model.safetensors")
    meta = json.loads((old / "config.json").read_text())
    meta["weights_sha256"] = hashlib.sha256((old / "model.safetensors").read_bytes()).hexdigest()
    (old / "config.json").write_text(json.dumps(meta))  # a consistent, older-format checkpoint
    with pytest.raises(CheckpointError, match=r"older COMPASS.*re-run `robodistill refine"):
        load_policy(old, "nav", embodiment="car")
