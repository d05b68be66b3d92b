"""Diffusion Policy teacher: network shapes, data windows, learning, rollout semantics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers_data import make_dataset, state_obs, tiny_config, untrained_policy

from robodistill.data.loading import (
    DatasetError,
    WindowDataset,
    chunk_delta_timestamps,
    open_dataset,
)
from robodistill.diffusion.train import train
from robodistill.diffusion.unet1d import ConditionalUnet1D, Conv1d
from robodistill.features import ACTION, ENV_STATE, IMAGE, STATE
from robodistill.policy import load_policy

torch.set_num_threads(1)  # tiny models: threads only add overhead on a shared 2-core CPU


@pytest.fixture(scope="module")
def state_dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "toy", num_episodes=6, episode_len=20)


@pytest.fixture(scope="module")
def image_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "toy_image"
    return make_dataset(root, num_episodes=2, episode_len=10, with_image=True)


class RampSampler:
    """Fake sampler: every chunk is a[t] = t (identity normalization); records batch sizes."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def __call__(self, noise_model, global_cond, noise, generator=None):
        self.batch_sizes.append(noise.shape[0])
        return torch.arange(noise.shape[1], dtype=torch.float32)[None, :, None].expand_as(noise)


def test_unet_maps_action_sequences_to_same_shape():
    unet = ConditionalUnet1D(3, 10, (16, 32, 64), 16, kernel_size=5, n_groups=4)
    noisy = torch.randn(4, 16, 3)  # (B, Tp, Da)
    out = unet(noisy, torch.tensor([0, 5, 50, 99]), torch.randn(4, 10))
    assert out.shape == noisy.shape


@pytest.mark.parametrize("batch", [1, 8, 9])
@pytest.mark.parametrize(("kernel", "stride", "padding"), [(5, 1, 2), (3, 2, 1), (1, 1, 0)])
def test_gemm_conv_equals_torch_conv(batch, kernel, stride, padding):
    conv = Conv1d(6, 10, kernel, stride=stride, padding=padding)
    x = torch.randn(batch, 6, 16)
    with torch.inference_mode():
        fast = conv(x)
        reference = torch.nn.functional.conv1d(x, conv.weight, conv.bias, stride, padding)
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)


def test_film_schedule_equals_per_step_conditioning():
    unet = ConditionalUnet1D(2, 12, (16, 32), 8, 5, 4).eval()
    actions, cond, steps = torch.randn(3, 16, 2), torch.randn(3, 12), torch.tensor([99, 40, 0])
    with torch.inference_mode():
        films = unet.film_schedule(steps, cond)
        for i, k in enumerate(steps):
            torch.testing.assert_close(
                unet.modulated(actions, films[i]), unet(actions, k.expand(3), cond)
            )


def test_windows_match_lerobot_getitem(state_dataset):
    keys = [STATE, ENV_STATE, ACTION]
    dataset = open_dataset(state_dataset, chunk_delta_timestamps(keys[:2], ACTION, 2, 8, 10))
    windows = WindowDataset(dataset, keys)
    rows = torch.tensor([0, 1, 19, 20, 37, len(windows) - 1])  # episode starts and ends
    batch = windows.get_batch(rows)
    for i, row in enumerate(rows.tolist()):
        item = dataset[row]
        for key in keys:
            torch.testing.assert_close(batch[key][i], item[key], rtol=0, atol=0)


def test_training_reduces_loss_and_gives_a_loadable_policy(state_dataset, tmp_path):
    out = tmp_path / "run"
    train(tiny_config(steps=80, log_every=10), state_dataset, out)
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 8
    assert np.mean(losses[-2:]) < 0.8 * losses[0]
    assert (out / "loss.png").is_file() and (out / "train.log").is_file()
    policy = load_policy(out, task="push", num_inference_steps=2, scheduler="ddim")
    rollout = policy.new_rollout(3)
    assert rollout.select_action(state_obs(3)).shape == (3, 2)


def test_image_policy_trains_and_acts(image_dataset, tmp_path):
    out = tmp_path / "run"
    train(tiny_config("image", steps=3, batch_size=4), image_dataset, out)
    policy = load_policy(out)
    assert policy.info.obs_mode == "image"
    obs = {STATE: np.zeros((2, 2), np.float32), IMAGE: np.zeros((2, 32, 32, 3), np.uint8)}
    assert policy.new_rollout(2).predict_action_chunk(obs).shape == (2, 8, 2)


def test_missing_feature_is_a_clear_error(state_dataset, tmp_path):
    with pytest.raises(DatasetError, match="observation.images.top"):
        train(tiny_config("image", steps=1), state_dataset, tmp_path / "run")


def test_first_predict_action_chunk_on_fresh_rollout_repeats_first_obs():
    policy = untrained_policy()
    rollout = policy.new_rollout(2)
    chunk = rollout.predict_action_chunk(state_obs(2, 0.5))
    assert chunk.shape == (2, policy.info.horizon, 2) and chunk.dtype == np.float32
    assert torch.all(rollout._history[STATE] == 0.5)  # To copies of the first obs


def test_select_action_executes_chunk_slice_and_replans_every_ta_steps():
    sampler = RampSampler()
    policy = untrained_policy(sampler=sampler)
    to, ta = policy.info.n_obs_steps, policy.info.n_action_steps
    rollout = policy.new_rollout(2)
    actions = [rollout.select_action(state_obs(2))[0, 0] for _ in range(2 * ta)]
    assert actions == list(range(to - 1, to - 1 + ta)) * 2  # chunk[To-1 : To-1+Ta], twice
    assert sampler.batch_sizes == [2, 2]


def test_reset_with_mask_only_resets_selected_envs():
    sampler = RampSampler()
    policy = untrained_policy(sampler=sampler)
    to = policy.info.n_obs_steps
    rollout = policy.new_rollout(2)
    rollout.select_action(state_obs(2, 1.0))
    rollout.select_action(state_obs(2, 2.0))
    rollout.reset(np.array([True, False]))
    action = rollout.select_action(state_obs(2, 3.0))
    assert sampler.batch_sizes == [2, 1]  # only env 0 re-plans
    assert action[:, 0].tolist() == [to - 1, to + 1]  # env 0 restarts, env 1 continues
    history = rollout._history[STATE][:, :, 0]  # (B, To)
    assert history[0].tolist() == [3.0, 3.0] and history[1].tolist() == [2.0, 3.0]
    with pytest.raises(ValueError, match="env_mask"):
        rollout.reset(np.array([True]))


def test_missing_observation_key_names_it():
    rollout = untrained_policy().new_rollout(1)
    with pytest.raises(KeyError, match="observation.environment_state"):
        rollout.select_action({STATE: np.zeros((1, 2), np.float32)})
