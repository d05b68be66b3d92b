"""RTI-DP: warm-start cost and semantics, discrete channels, errors, and the contraction bound."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers_data import make_dataset, state_obs, tiny_config, untrained_policy

from robodistill.checkpoint import CheckpointError
from robodistill.diffusion.normalizer import MinMaxNormalizer
from robodistill.diffusion.sampler import make_noise_scheduler, make_sampler
from robodistill.diffusion.train import train
from robodistill.fast.lipschitz import (
    choose_rti_steps,
    contraction_report,
    jacobians,
    step_coefficients,
    training_windows,
)
from robodistill.fast.rti import RTIPolicy, widen_discrete_stats
from robodistill.features import ACTION
from robodistill.policy import load_policy

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "toy", num_episodes=4, episode_len=20)


@pytest.fixture(scope="module")
def teacher_dir(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "teacher"
    train(tiny_config(steps=20, checkpoint_every=20), dataset, out)
    return out


def ddpm_teacher(steps: int = 10):
    return untrained_policy(sampler=make_sampler(tiny_config().noise, "ddpm", steps))


class Counter:
    """Evaluations of ε_θ per env, through a hook on the U-Net's output layer (which every
    evaluation runs, whether through ``forward`` or ``modulated``)."""

    def __init__(self, unet: torch.nn.Module) -> None:
        self.calls: list[int] = []
        unet.final.register_forward_hook(lambda m, inputs, out: self.calls.append(out.shape[0]))

    def take(self) -> int:
        total, self.calls = sum(self.calls), []
        return total


def test_first_call_runs_full_schedule_then_k_prime_steps_per_action():
    teacher = ddpm_teacher(10)
    rti = RTIPolicy(teacher, rti_steps=3, discrete=[])
    assert rti.info.n_action_steps == 1
    assert [int(t) for t in rti.timesteps] == [
        int(t) for t in teacher.sampler.scheduler.timesteps[-3:]
    ]
    counter = Counter(teacher.model.unet)
    rollout = rti.new_rollout(2, seed=0)
    assert rollout.select_action(state_obs(2)).shape == (2, 2)
    assert counter.take() == 2 * 10  # cold start: the whole schedule for both envs
    for _ in range(3):
        rollout.select_action(state_obs(2))
        assert counter.take() == 2 * 3  # K' steps per env and control step
    rollout.reset(np.array([True, False]))
    rollout.select_action(state_obs(2))
    assert counter.take() == 10 + 3  # env 0 starts a new episode, env 1 stays warm


def test_guess_is_previous_chunk_shifted_with_discrete_channel_snapped():
    rti = RTIPolicy(ddpm_teacher(), rti_steps=1, discrete=[1], discrete_snap=0.1)
    previous = torch.stack([torch.arange(8.0), torch.linspace(-0.9, 0.9, 8)], -1)[None]  # (1, 8, 2)
    guess = rti.initial_guess(previous.clone())
    torch.testing.assert_close(guess[0, :, 0], torch.tensor([1.0, 2, 3, 4, 5, 6, 7, 7]))
    snapped = torch.tensor([-0.1, -0.1, -0.1, 0.1, 0.1, 0.1, 0.1, 0.1])  # signs of the shifted
    torch.testing.assert_close(guess[0, :, 1], snapped)


def test_without_renoise_a_fixed_point_guess_stays_put():
    """With ε_θ ≡ 0 and DDIM, the last step maps a guess a to a/√ᾱ_0 ≈ a."""
    teacher = untrained_policy(sampler=make_sampler(tiny_config().noise, "ddim", 4))
    rti = RTIPolicy(teacher, rti_steps=1, discrete=[], renoise=False)
    unet = teacher.model.unet
    unet.forward = lambda a, t, c: torch.zeros_like(a)
    constant = torch.full((1, 8, 2), 0.5)
    torch.testing.assert_close(rti.refine(constant, torch.zeros(1, 1)), constant, rtol=1e-2, atol=0)
    rti.renoise = True  # re-noised, the same guess moves
    moved = rti.refine(constant, torch.zeros(1, 1), torch.Generator().manual_seed(0))
    assert not torch.allclose(moved, constant)


def test_discrete_output_is_binarized():
    rti = RTIPolicy(ddpm_teacher(4), rti_steps=2, discrete=[1])
    rollout = rti.new_rollout(3)
    for _ in range(3):
        assert set(rollout.select_action(state_obs(3))[:, 1].tolist()) <= {-1.0, 1.0}
    chunk = rollout.predict_action_chunk(state_obs(3))
    assert chunk.shape == (3, 8, 2) and set(np.unique(chunk[..., 1])) <= {-1.0, 1.0}


def test_scale_variant_stats_normalize_discrete_channel_to_small_magnitude():
    stats = {ACTION: {"min": [0.0, -1.0], "max": [2.0, 1.0]}}
    normalizer = MinMaxNormalizer(widen_discrete_stats(stats, [1], 10.0))
    x = torch.tensor([[2.0, 1.0], [0.0, -1.0]])
    torch.testing.assert_close(
        normalizer.normalize(ACTION, x), torch.tensor([[1.0, 0.1], [-1, -0.1]])
    )
    torch.testing.assert_close(normalizer.unnormalize(ACTION, normalizer.normalize(ACTION, x)), x)


def test_load_options_select_rti_and_bad_input_is_refused(teacher_dir):
    policy = load_policy(teacher_dir, "push", sampler="rti", rti_steps=2, scheduler="ddpm")
    assert isinstance(policy, RTIPolicy) and policy.rti_steps == 2
    assert policy.new_rollout(2).select_action(state_obs(2)).shape == (2, 2)
    for k in (0, 21):  # tiny: K = 20 DDPM steps
        with pytest.raises(ValueError, match=r"rti_steps \(K'\) must be in \[1, 20\]"):
            load_policy(
                teacher_dir, sampler="rti", rti_steps=k, scheduler="ddpm", num_inference_steps=20
            )
    with pytest.raises(ValueError, match="needs --rti-steps"):
        load_policy(teacher_dir, sampler="rti")
    with pytest.raises(ValueError, match="only apply to --sampler rti"):
        load_policy(teacher_dir, sampler="chunk", rti_steps=2)
    with pytest.raises(CheckpointError, match="trained with variable noise"):
        load_policy(teacher_dir, sampler="sdp")


def test_rti_refuses_a_sampler_that_cannot_renoise():
    teacher = untrained_policy(sampler=lambda model, cond, noise, generator=None: noise)
    with pytest.raises(ValueError, match="cannot|re-noise"):
        RTIPolicy(teacher, rti_steps=1)


@pytest.mark.parametrize("kind", ["ddim", "ddpm"])
def test_step_coefficients_reproduce_the_scheduler_step(kind):
    noise = dataclasses.replace(tiny_config().noise, clip_sample=False)
    scheduler = make_noise_scheduler(noise, kind)
    scheduler.set_timesteps(5)
    schedule = [int(t) for t in scheduler.timesteps]
    a, eps = torch.randn(3, 8, 2), torch.randn(3, 8, 2)
    for t, t_prev in zip(schedule, [*schedule[1:], -1]):
        if kind == "ddpm" and t_prev >= 0:
            continue  # stochastic: only the final DDPM step is deterministic
        a_coef, b_coef = step_coefficients(scheduler, t, t_prev)
        expected = scheduler.step(eps, torch.tensor(t), a).prev_sample
        torch.testing.assert_close(a_coef * a + b_coef * eps, expected, rtol=1e-4, atol=1e-5)


def test_jacobians_of_a_linear_map_and_bound_choice():
    weight = torch.randn(16, 16)
    x = torch.randn(4, 8, 2)
    jac = jacobians(lambda a: (a.reshape(4, 16) @ weight.T).reshape(4, 8, 2), x)
    torch.testing.assert_close(jac, weight.expand(4, 16, 16))
    assert choose_rti_steps([1.2, 0.9, 0.4, 0.2], target=0.5) == 3
    assert choose_rti_steps([1.5, 1.2, 1.4], target=0.5) == 2  # none contractive: the minimum


def test_contraction_report_on_a_trained_teacher(teacher_dir, dataset):
    policy = load_policy(teacher_dir, scheduler="ddpm", num_inference_steps=20)
    obs, actions = training_windows(policy, dataset, samples=4)
    report = contraction_report(policy, obs, actions, max_steps=5)
    assert report.timesteps == [0, 1, 2, 3, 4]
    assert report.lipschitz_max == max(report.lipschitz) > 0
    for k, (c, l_k) in enumerate(zip(report.theorem_factors, report.lipschitz, strict=True)):
        a_coef, b_coef = step_coefficients(policy.sampler.scheduler, k, k - 1)
        assert c == pytest.approx(abs(a_coef) + abs(b_coef) * l_k)
        assert report.jacobian_factors[k] <= c * (1 + 1e-5)  # the triangle inequality
    assert 1 <= report.theorem_choice <= 5 and 1 <= report.jacobian_choice <= 5
