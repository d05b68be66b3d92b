"""Streaming Diffusion Policy: variable-noise model and objective, buffer sampler, training."""

from __future__ import annotations

import pytest
import torch
from helpers_data import FEATURE_SHAPES, make_dataset, state_obs

from robodistill.cli import main
from robodistill.diffusion.normalizer import MinMaxNormalizer
from robodistill.diffusion.sampler import make_noise_scheduler, make_sampler
from robodistill.fast.rti import RTIPolicy
from robodistill.fast.sdp import (
    SDPConfig,
    SDPModel,
    SDPPolicy,
    StreamingPolicy,
    VariableNoiseStepEncoder,
    chunk_ids,
    variable_noise_steps,
    variable_step,
)
from robodistill.policy import load_policy
from robodistill.recipes import load_recipe

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def config() -> SDPConfig:
    return load_recipe("sdp/tiny", SDPConfig)  # Tp 8, To 2, Ta 3, h 2, K 20, N 4


def streaming_policy(config: SDPConfig) -> StreamingPolicy:
    stats = {k: {"min": [-1.0] * n, "max": [1.0] * n} for k, (n,) in FEATURE_SHAPES.items()}
    sampler = make_sampler(config.noise, "ddim", config.noise.num_inference_steps)
    model = SDPModel(config, FEATURE_SHAPES)
    return StreamingPolicy(
        SDPPolicy(model, MinMaxNormalizer(stats), config, FEATURE_SHAPES, sampler)
    )


def test_chunks_and_training_noise_mixture(config):
    assert chunk_ids(config).tolist() == [0, 0, 0, 0, 1, 1, 1, 1]  # past index joins chunk 0
    k = variable_noise_steps(config, 4000, torch.Generator().manual_seed(0))  # (B, Tp)
    constant = (k == k[:, :1]).all(dim=1)
    assert 0.15 < constant.float().mean() < 0.25  # ~20% temporally constant (plus rare ties)
    chunkwise = k[~constant]
    assert chunkwise[:, :4].max() <= 9 and chunkwise[:, 4:].min() >= 10  # chunk c in [cK/h, ...)
    assert (chunkwise[:, 4] - chunkwise[:, 0] == 10).all()  # one shared offset j per sample
    assert k.min() >= 0 and k.max() <= 19


def test_step_encoder_takes_per_index_steps(config):
    encoder = VariableNoiseStepEncoder(horizon=8, dim=16)
    k = torch.tensor([3, 7])
    torch.testing.assert_close(encoder(k), encoder(k[:, None].expand(2, 8)))
    ramp = torch.arange(8)[None].expand(2, 8)
    assert not torch.allclose(encoder(ramp), encoder(k[:, None].expand(2, 8)))
    model = SDPModel(config, FEATURE_SHAPES)
    obs = {
        key: torch.zeros(2, 2, *shape) for key, shape in FEATURE_SHAPES.items() if key != "action"
    }
    assert model(obs, torch.randn(2, 8, 2), ramp).shape == (2, 8, 2)


@pytest.mark.parametrize("kind", ["ddim", "ddpm"])
def test_variable_step_with_shared_step_matches_diffusers(config, kind):
    scheduler = make_noise_scheduler(config.noise, kind)
    scheduler.set_timesteps(4)
    sample, eps = torch.randn(3, 8, 2), torch.randn(3, 8, 2)
    pairs = [(15, 10), (10, 5), (5, 0), (0, -1)] if kind == "ddim" else [(0, -1)]
    for t, t_prev in pairs:  # DDPM adds noise except at its last step
        ours = variable_step(
            scheduler, eps, sample, torch.full((3, 8), t), torch.full((3, 8), t_prev)
        )
        expected = scheduler.step(eps, torch.tensor(t), sample).prev_sample
        torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)


def test_buffer_sampler_costs_n_over_h_steps_per_chunk(config):
    policy = streaming_policy(config)
    calls = []
    policy.base.model.unet.final.register_forward_hook(lambda m, i, o: calls.append(o.shape[0]))
    rollout = policy.new_rollout(2, seed=0)
    assert rollout.select_action(state_obs(2)).shape == (2, 2)
    assert sum(calls) == 2 * 4  # cold start: all N = 4 steps
    assert (rollout._levels == policy.target_levels).all()  # chunk c back at level (c+1)N/h - 1
    calls.clear()
    for _ in range(2 + 3 * 2):  # the rest of the first chunk, then two more chunks
        rollout.select_action(state_obs(2))
    assert sum(calls) == 2 * 2 * 2  # two streaming calls of N/h = 2 steps for 2 envs
    rollout.reset(torch.tensor([True, False]).numpy())
    calls.clear()
    rollout.select_action(state_obs(2))  # both queues are empty: env 1 streams on (N/h steps),
    assert calls == [2, 2, 1, 1]  # env 0 starts a new episode (all N steps)


def test_buffer_advance_lifts_clean_past_index_to_chunk_level(config):
    policy = streaming_policy(config)
    buffer = torch.zeros(1, 8, 2)
    levels = torch.full((1, 8), -1)  # all clean, as after a cold start
    buffer, levels = policy.advance(buffer, levels, torch.Generator().manual_seed(0))
    assert levels.tolist() == [policy.target_levels.tolist()]
    assert buffer[0, :5].abs().max() > 0  # clean zeros re-noised to levels 1 and 3


def test_train_sdp_from_recipe_then_stream_and_rti(tmp_path):
    data = make_dataset(tmp_path / "toy", num_episodes=3, episode_len=16)
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--recipe",
                "sdp/tiny",
                "--dataset",
                str(data),
                "--out",
                str(out),
                "--steps",
                "12",
            ]
        )
        == 0
    )
    policy = load_policy(out, task="push")  # an SDP checkpoint streams by default
    assert isinstance(policy, StreamingPolicy)
    assert policy.new_rollout(2).select_action(state_obs(2)).shape == (2, 2)
    rti = load_policy(out, sampler="rti", rti_steps=1)  # RTI works on any scheduler checkpoint
    assert isinstance(rti, RTIPolicy)
    assert rti.new_rollout(1).predict_action_chunk(state_obs(1)).shape == (1, 8, 2)
    with pytest.raises(ValueError, match="divisible by h"):
        load_policy(out, num_inference_steps=3)


def test_sdp_config_rejects_a_buffer_that_does_not_fit(config):
    import dataclasses

    with pytest.raises(ValueError, match="exceeds"):
        dataclasses.replace(config, n_action_steps=4)
    three = dataclasses.replace(config.streaming, num_chunks=3)
    with pytest.raises(ValueError, match="num_train_timesteps .* divisible"):  # K = 20
        dataclasses.replace(config, n_action_steps=1, streaming=three)
