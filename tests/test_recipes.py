"""Recipes in policies/ and the ``robodistill train`` command."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from helpers_data import make_dataset

from robodistill.commands import train as train_command
from robodistill.configs import ConfigError
from robodistill.data.loading import DatasetError
from robodistill.diffusion.config import DiffusionConfig
from robodistill.policy import load_policy
from robodistill.recipes import list_recipes, load_recipe, require_method

torch.set_num_threads(1)  # tiny models: threads only add overhead on a shared 2-core CPU

SHIPPED = ["nav", "pick_place", "push_image", "push_state", "reach", "tiny"]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_recipe_builds_its_config(name):
    assert f"diffusion/{name}" in list_recipes("diffusion")
    config = load_recipe(f"diffusion/{name}", DiffusionConfig)
    assert config.n_obs_steps - 1 + config.n_action_steps <= config.horizon


def test_recipe_overrides_nested_fields_and_keeps_defaults(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('task = "reach"\n[unet]\ndown_dims = [8, 16]\n[train]\nlr = 1\n')
    config = load_recipe(path, DiffusionConfig)
    assert config.unet.down_dims == (8, 16) and config.train.lr == 1.0
    assert config.unet.kernel_size == DiffusionConfig().unet.kernel_size


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[unet]\ndown_dimz = [8]\n", r"unet\.'?down_dimz"),
        ("horizn = 8\n", "horizn"),
        ('[train]\nsteps = "many"\n', "train.steps"),
        ('obs_mode = "depth"\n', "obs_mode"),
        ("horizon = 10\n", "divisible"),
        ("horizon = 4\n", "must cover"),
    ],
)
def test_bad_recipe_is_an_error_naming_the_field(tmp_path, toml, message):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_recipe(path, DiffusionConfig)


def test_unknown_recipe_lists_available_ones():
    with pytest.raises(ConfigError, match="diffusion/push_state"):
        load_recipe("diffusion/push_sate", DiffusionConfig)


def test_own_recipe_file_takes_its_method_from_its_folder(tmp_path):
    mine = tmp_path / "rpd" / "mine.toml"
    mine.parent.mkdir()
    mine.write_text('task = "push"\n')
    require_method(mine, "rpd", "rpd/push")  # accepted
    loose = tmp_path / "mine.toml"
    loose.write_text('task = "push"\n')
    with pytest.raises(ConfigError, match="folder named rpd/"):
        require_method(loose, "rpd", "rpd/push")


def test_train_command_runs_and_overrides_steps(tmp_path):
    data = make_dataset(tmp_path / "data", num_episodes=2, episode_len=12)
    out = tmp_path / "run"
    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    argv = ["--recipe", "diffusion/tiny", "--dataset", str(data), "--out", str(out)]
    assert train_command.run(parser.parse_args([*argv, "--steps", "2"])) == 0
    assert json.loads((out / "config.json").read_text())["step"] == 2
    assert load_policy(out).info.task == "push"
    bad = ["--recipe", "diffusion/tiny", "--dataset", str(tmp_path / "none"), "--out", str(out)]
    with pytest.raises(DatasetError, match="no LeRobotDataset"):
        train_command.run(parser.parse_args(bad))
