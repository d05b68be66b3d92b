"""RPD: the BC term carries gradients from the update pass, λ schedules, a tiny end-to-end run
(checkpoint, eval, idempotent re-run, resume after a kill) and the errors raised before any
training starts."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import pytest
import torch

from robodistill.checkpoint import load_training_state
from robodistill.configs import ConfigError
from robodistill.policy import Policy, PolicyInfo, load_policy
from robodistill.recipes import load_recipe
from robodistill.refine import rpd, rpd_command
from robodistill.refine.envs import make_vec_env, state_dims
from robodistill.refine.rpd import RPD, RPDConfig, TeacherBCLoss, train_rpd
from robodistill.refine.teacher import check_action_space, check_teacher, load_teacher

torch.set_num_threads(1)


def tiny_config(**overrides) -> RPDConfig:
    return dataclasses.replace(load_recipe("rpd/tiny", RPDConfig), **overrides)


def collected_model(config: RPDConfig) -> RPD:
    """An RPD model with expert teacher whose buffer holds one rollout (no update yet)."""
    from robodistill.refine.teacher import observation_stats

    torch.manual_seed(config.seed)
    teacher = load_teacher("expert", config.task, {})
    stats = observation_stats(teacher, config.task, "expert", episodes=1)
    venv = make_vec_env(config.task, config.ppo.num_envs, config.reward_mode, config.seed)
    model = RPD(venv, teacher, config, stats, state_dims(config.task))
    model.train = lambda: None  # collect only
    model.learn(config.ppo.num_envs * config.ppo.n_steps)
    del model.train
    return model


def test_bc_term_gradients_come_from_the_update_pass() -> None:
    model = collected_model(tiny_config())
    batch = next(model.rollout_buffer.get(64))
    teacher_actions = batch.targets["teacher_action"]
    assert teacher_actions.abs().sum() > 0, "teacher actions were not stored in the buffer"
    term = TeacherBCLoss(weight=1.0)
    model.policy.zero_grad()
    loss = term(model.policy, batch, progress=0.0)
    loss.backward()
    grad = model.policy.action_net.weight.grad
    assert grad is not None and grad.abs().sum() > 0, "BC term has no gradient wrt μ_θ"
    # the term depends on the live parameters: moving μ_θ moves the loss
    with torch.no_grad():
        model.policy.action_net.bias += 0.5
    assert not torch.isclose(term(model.policy, batch, 0.0), loss)


def test_bc_weight_changes_the_ppo_update() -> None:
    """Same seed, same rollout: λ = 1 and λ = 0 must give different updated weights."""
    weights = {}
    for lam in (0.0, 1.0):
        config = tiny_config(bc_weight=lam)
        model = collected_model(dataclasses.replace(config, bc_weight=1.0))  # same rollout
        model.aux_losses = [TeacherBCLoss(lam)]
        model.train()
        weights[lam] = model.policy.action_net.weight.detach().clone()
        assert "bc_loss" in model.last_update
    assert not torch.allclose(weights[0.0], weights[1.0])


def test_student_inputs_are_normalized_and_bounded() -> None:
    """The stats' range maps to [-1, 1]; a feature almost constant in the teacher's data (its
    scale ~1000) far outside that range stays bounded instead of saturating the network."""
    from robodistill.refine.gaussian import INPUT_CLIP, normalization_affine, normalize_state

    stats = {
        "observation.state": {"min": [0.0, -1.0], "max": [2.0, 1.0]},
        "observation.environment_state": {"min": [0.999], "max": [1.001]},
    }
    mid, scale = normalization_affine(stats)
    low, high = torch.tensor([0.0, -1.0, 0.999]), torch.tensor([2.0, 1.0, 1.001])
    assert torch.allclose(normalize_state(low, mid, scale), -torch.ones(3), atol=1e-4)
    assert torch.allclose(normalize_state(high, mid, scale), torch.ones(3), atol=1e-4)
    tipped = normalize_state(torch.tensor([1.0, 0.0, 0.5]), mid, scale)
    assert tipped[2] == -INPUT_CLIP and tipped[:2].abs().max() < 1e-6


def test_lambda_schedules() -> None:
    constant, cosine = TeacherBCLoss(1.0, "constant"), TeacherBCLoss(2.0, "cosine")
    assert constant.lam(0.0) == constant.lam(1.0) == 1.0
    assert cosine.lam(0.0) == pytest.approx(2.0)
    assert cosine.lam(0.5) == pytest.approx(1.0)
    assert cosine.lam(1.0) == pytest.approx(0.0, abs=1e-12)


def test_tiny_run_checkpoint_eval_and_idempotent_rerun(tmp_path) -> None:
    out = tmp_path / "rpd"
    summary = train_rpd(tiny_config(), "expert", out)
    assert summary["env_steps"] == 256 and summary["method"] == "rpd"
    assert [p["step"] for p in summary["curve"]][0] == 0 and len(summary["curve"]) >= 2
    assert (out / "curves.png").is_file() and (out / "metrics.jsonl").is_file()
    policy = load_policy(out, "push")
    obs = {
        "observation.state": np.zeros((3, 4), np.float32),
        "observation.environment_state": np.zeros((3, 4), np.float32),
    }
    action = policy.new_rollout(3).select_action(obs)
    assert action.shape == (3, 2) and np.all(np.abs(action) <= 1)
    start = time.perf_counter()
    assert train_rpd(tiny_config(), "expert", out) == summary  # finished: no training
    assert time.perf_counter() - start < 5
    with pytest.raises(ValueError, match="another config"):
        train_rpd(tiny_config(seed=1), "expert", out)


def test_killed_run_resumes_after_its_last_checkpoint(tmp_path, monkeypatch) -> None:
    out, save = tmp_path / "rpd", rpd._save

    def save_then_die(*args) -> None:
        save(*args)
        raise KeyboardInterrupt  # killed right after the first checkpoint (step 128)

    monkeypatch.setattr(rpd, "_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_rpd(tiny_config(), "expert", out)
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="interrupted run with another config"):
        train_rpd(tiny_config(seed=1), "expert", out)
    summary = train_rpd(tiny_config(), "expert", out)
    assert "resumed at step 128" in (out / "train.log").read_text()
    assert [p["step"] for p in summary["curve"]] == [0, 128, 256]
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [0, 128, 256]
    # Adam's step count continued: 2 updates x 2 epochs x 2 minibatches, not 4
    state = load_training_state(out / "checkpoints" / "last")
    assert state.tensors["optimizer.0.step"].item() == 8


def test_ppo_from_scratch_never_queries_the_teacher(tmp_path) -> None:
    summary = train_rpd(tiny_config(bc_weight=0.0), "expert", tmp_path / "ppo")
    assert summary["method"] == "ppo" and summary["teacher_time_s"] == 0.0


class _FakePolicy(Policy):
    def __init__(self, task: str, action_dim: int, obs_mode: str = "state") -> None:
        self.info = PolicyInfo(task=task, obs_mode=obs_mode, action_dim=action_dim)

    def new_rollout(self, num_envs=1, seed=None):
        raise NotImplementedError


def test_bad_teacher_and_reward_mode_fail_before_training(tmp_path) -> None:
    with pytest.raises(ValueError, match="4-D.*pass a teacher trained on 'push'"):
        check_action_space("pick_place", "push", "runs/pick_place_teacher")
    with pytest.raises(ValueError, match="outputs 4-D actions"):
        check_teacher(_FakePolicy("push", 4), "push")
    with pytest.raises(ValueError, match="state-mode teacher"):
        check_teacher(_FakePolicy("push", 2, "image"), "push")
    with pytest.raises(ValueError, match="no reward mode 'shaped'"):
        tiny_config(reward_mode="shaped")
    with pytest.raises(ValueError, match="bc_schedule"):
        tiny_config(bc_schedule="linear")
    parser = argparse.ArgumentParser()
    rpd_command.add_arguments(parser)
    args = parser.parse_args(
        ["--teacher", "expert", "--task", "push", "--recipe", "rpd/tiny", "--reward", "shaped"]
        + ["--out", str(tmp_path / "x")]
    )
    with pytest.raises(ValueError, match="choose reward_mode"):
        rpd_command.run(args)
    assert not (tmp_path / "x").exists()


def test_cli_trains_and_reports(tmp_path, capsys) -> None:
    parser = argparse.ArgumentParser()
    rpd_command.add_arguments(parser)
    args = parser.parse_args(
        ["--teacher", "expert", "--task", "push", "--recipe", "rpd/tiny", "--reward", "sparse"]
        + ["--steps", "128", "--out", str(tmp_path / "cli")]
    )
    assert rpd_command.run(args) == 0
    assert "success" in capsys.readouterr().out
