"""Flat state observations for the students, and the vectorized envs they train in.

Students see one vector per step: ``observation.state`` followed by
``observation.environment_state`` (the order of :data:`STATE_KEYS`), i.e. the task's
state-mode observation flattened. Teachers keep seeing the feature dict; :func:`split_flat`
turns a batch of flat vectors back into it.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from robodistill.envs import get_spec, make_env
from robodistill.envs.spec import REWARD_MODES
from robodistill.features import ENV_STATE, FEATURE_TO_ENV_KEY, STATE
from robodistill.policy import Observation

STATE_KEYS = (STATE, ENV_STATE)
"""Feature names concatenated, in this order, into a student's flat observation."""


def check_reward_mode(task: str, reward_mode: str) -> None:
    """Raise a ValueError naming the choices unless the task's envs have ``reward_mode``."""
    get_spec(task)  # unknown task -> ValueError listing the tasks
    if reward_mode not in REWARD_MODES:
        raise ValueError(
            f"task {task!r} has no reward mode {reward_mode!r}; choose --reward from "
            f"{list(REWARD_MODES)}"
        )


def state_dims(task: str) -> dict[str, int]:
    """Length of each state feature of ``task``, e.g. ``{observation.state: 4, ...}``."""
    env = make_env(task, obs_mode="state")
    dims = {key: env.observation_space[FEATURE_TO_ENV_KEY[key]].shape[0] for key in STATE_KEYS}
    env.close()
    return dims


class FlatStateObs(gym.ObservationWrapper):
    """State-mode Dict observation -> one float32 vector (agent_pos, environment_state)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        parts = [env.observation_space[FEATURE_TO_ENV_KEY[k]] for k in STATE_KEYS]
        size = sum(p.shape[0] for p in parts)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)

    def observation(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        keys = [FEATURE_TO_ENV_KEY[k] for k in STATE_KEYS]
        return np.concatenate([observation[k] for k in keys]).astype(np.float32)


def make_flat_env(task: str, reward_mode: str = "dense") -> gym.Env:
    """One env of ``task`` in state mode with flat observations and the given reward."""
    check_reward_mode(task, reward_mode)
    return FlatStateObs(make_env(task, obs_mode="state", reward_mode=reward_mode))


def make_vec_env(task: str, num_envs: int, reward_mode: str, seed: int):  # -> DummyVecEnv
    """SB3 ``DummyVecEnv`` of flat envs (in-process: no ``__main__`` guard needed), seeded."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    check_reward_mode(task, reward_mode)
    venv = DummyVecEnv([lambda: Monitor(make_flat_env(task, reward_mode)) for _ in range(num_envs)])
    venv.seed(seed)
    return venv


def split_flat(flat: np.ndarray, dims: dict[str, int]) -> Observation:
    """(B, Ds+De) flat observations -> ``{observation.state: (B, Ds), ...}`` (teacher input)."""
    out, start = {}, 0
    for key in STATE_KEYS:
        out[key] = np.ascontiguousarray(flat[:, start : start + dims[key]], dtype=np.float32)
        start += dims[key]
    if start != flat.shape[1]:
        raise ValueError(f"flat observation has {flat.shape[1]} values, expected {start}")
    return out


def join_features(obs: Observation) -> np.ndarray:
    """``{observation.state: (B, Ds), ...}`` -> (B, Ds+De) flat observations (student input)."""
    missing = [k for k in STATE_KEYS if k not in obs]
    if missing:
        raise KeyError(
            f"observation lacks {missing}: refined students need state-mode observations "
            f"({list(STATE_KEYS)}); got {sorted(obs)}"
        )
    return np.concatenate([np.asarray(obs[k], dtype=np.float32) for k in STATE_KEYS], axis=1)
