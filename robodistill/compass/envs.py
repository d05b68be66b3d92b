"""Observation frames and histories, shared by the datasets, the SB3 envs and the rollouts.

A frame is ``observation.state`` followed by ``observation.environment_state`` (F values). A
history holds the last To frames, newest last; at an episode's start it repeats the first
frame, as lerobot's ``delta_timestamps`` windows do (indices clamped to the episode).
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from robodistill.features import ENV_STATE, STATE

FRAME_KEYS = (STATE, ENV_STATE)
"""Feature names concatenated into one frame, in this order."""


def frame_from_features(obs: dict[str, np.ndarray]) -> np.ndarray:
    """Batched feature dict -> frames (B, F) float32."""
    return np.concatenate([np.asarray(obs[k], dtype=np.float32) for k in FRAME_KEYS], axis=-1)


def frame_from_env(obs: dict[str, np.ndarray]) -> np.ndarray:
    """One env observation (``agent_pos``, ``environment_state``) -> frame (F,) float32."""
    return np.concatenate([obs["agent_pos"], obs["environment_state"]]).astype(np.float32)


class HistoryBuffer:
    """The last To frames of B envs, (B, To, F); a reset env restarts from its next frame."""

    def __init__(self, num_envs: int, n_obs_steps: int) -> None:
        self.n_obs_steps = n_obs_steps
        self.frames: np.ndarray | None = None  # (B, To, F)
        self.fresh = np.ones(num_envs, dtype=bool)

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Append frames (B, F) and return the histories (B, To, F)."""
        if self.frames is None:
            self.frames = np.repeat(frames[:, None], self.n_obs_steps, axis=1)
        else:
            self.frames = np.concatenate([self.frames[:, 1:], frames[:, None]], axis=1)
        self.frames[self.fresh] = frames[self.fresh, None]  # repeat the first frame
        self.fresh[:] = False
        return self.frames.copy()

    def reset(self, env_mask: np.ndarray | None = None) -> None:
        if env_mask is None:
            self.fresh[:] = True
        else:
            self.fresh |= np.asarray(env_mask, dtype=bool)


class HistoryObservation(gym.Wrapper):
    """A nav-style env whose observation is its frame history, Box (To, F) float32 (for SB3)."""

    def __init__(self, env: gym.Env, n_obs_steps: int) -> None:
        super().__init__(env)
        frame_dim = sum(
            env.observation_space[k].shape[0] for k in ("agent_pos", "environment_state")
        )
        self.observation_space = spaces.Box(
            -np.inf, np.inf, shape=(n_obs_steps, frame_dim), dtype=np.float32
        )
        self.history = HistoryBuffer(1, n_obs_steps)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.history.reset()
        return self.history.push(frame_from_env(obs)[None])[0], info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.history.push(frame_from_env(obs)[None])[0], reward, terminated, truncated, info


def history_env_factory(
    task: str, embodiment: str, n_obs_steps: int, reward_mode: str = "dense"
) -> Callable[[], gym.Env]:
    """A thunk for SB3's ``DummyVecEnv``: the task's env (with its time limit) + history."""

    def make() -> gym.Env:
        from robodistill.envs import make_env

        env = make_env(task, embodiment=embodiment, reward_mode=reward_mode)
        return HistoryObservation(env, n_obs_steps)

    return make


def make_history_vec_env(
    task: str, embodiment: str, num_envs: int, n_obs_steps: int, seed: int, reward_mode: str
):
    """``DummyVecEnv`` of ``num_envs`` history envs, seeded ``seed, seed + 1, ...``."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([history_env_factory(task, embodiment, n_obs_steps, reward_mode)] * num_envs)
    venv.seed(seed)
    return venv
