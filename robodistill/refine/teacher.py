"""Any robodistill policy as a teacher queried on the states a student visits.

The teacher (a diffusion teacher, an RTI/SDP sampler, a consistency student, or ``expert``) is
driven closed-loop on the student's trajectory: at every step it gets the current observation
(its own To-step history lives in its :class:`~robodistill.policy.Rollout`, reset with the
student's envs), predicts a fresh chunk, and its action at this state is the first action it
would execute from that chunk, index ``To - 1`` (Chi et al. 2023's receding horizon). Querying
a fresh chunk per step costs one teacher inference (e.g. K DDIM denoising steps) per env step,
and :meth:`TeacherQuery.sample` with N samples costs N of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robodistill.envs import get_spec, make_env
from robodistill.features import STATE
from robodistill.policy import Observation, Policy, load_policy
from robodistill.refine.envs import STATE_KEYS, join_features, state_dims


def load_teacher(source: str | Path, task: str, options: dict[str, Any]) -> Policy:
    """Load a teacher for ``task`` with sampler ``options`` and check it fits the task.

    ``options`` go to :func:`robodistill.policy.load_policy` (e.g. ``scheduler="ddim",
    num_inference_steps=2`` for a cheaper diffusion teacher); they are ignored for ``expert``.
    """
    if str(source) == "expert":
        policy = load_policy("expert", task)
    else:
        from robodistill.checkpoint import read_checkpoint

        ckpt_task = read_checkpoint(source).task
        check_action_space(ckpt_task, task, str(source))
        policy = load_policy(source, **options)
    check_teacher(policy, task, str(source))
    return policy


def check_action_space(teacher_task: str, task: str, source: str) -> None:
    """A ValueError if the teacher's task acts in another action space than ``task``."""
    theirs, ours = get_spec(teacher_task).action, get_spec(task).action
    if theirs.names != ours.names:
        raise ValueError(
            f"teacher {source} acts in the action space of task {teacher_task!r} "
            f"({len(theirs.names)}-D: {theirs.names}), but task {task!r} needs "
            f"{len(ours.names)}-D {ours.names}: pass a teacher trained on {task!r} "
            "(or --task " + teacher_task + ")"
        )


def check_teacher(policy: Policy, task: str, source: str = "teacher") -> None:
    """Raise a ValueError unless ``policy`` acts in ``task``'s action space on state obs."""
    spec = get_spec(task)
    if policy.info.action_dim != spec.action_dim:
        raise ValueError(
            f"teacher {source} outputs {policy.info.action_dim}-D actions, but task {task!r} "
            f"has a {spec.action_dim}-D action space {spec.action.names}: pass a teacher "
            f"trained on {task!r}"
        )
    if policy.info.task != task:
        raise ValueError(
            f"teacher {source} was trained on task {policy.info.task!r}, not {task!r}: pass a "
            f"teacher trained on {task!r}"
        )
    if policy.info.obs_mode != "state":
        raise ValueError(
            f"teacher {source} reads {policy.info.obs_mode!r} observations; refinement drives "
            "the teacher on state observations: pass a state-mode teacher"
        )


class TeacherQuery:
    """A teacher's own rollout state for ``num_envs`` envs x ``samples`` draws per state."""

    def __init__(self, policy: Policy, num_envs: int, samples: int = 1, seed: int = 0) -> None:
        if samples < 1:
            raise ValueError(f"teacher samples must be >= 1, got {samples}")
        self.policy = policy
        self.num_envs = num_envs
        self.samples = samples
        self.rollout = policy.new_rollout(num_envs * samples, seed=seed)
        self.index = policy.info.n_obs_steps - 1
        """Index in a chunk of the action executed first: To - 1."""

    def sample(self, obs: Observation) -> np.ndarray:
        """(B, N, Da) teacher actions at ``obs`` (B envs): N independent draws per state.

        Every call pushes ``obs`` into the teacher's history, so call it once per env step.
        """
        repeated = {k: np.repeat(v, self.samples, axis=0) for k, v in obs.items()}  # (B*N, ...)
        chunk = self.rollout.predict_action_chunk(repeated)  # (B*N, Tp, Da)
        action = chunk[:, min(self.index, chunk.shape[1] - 1)]  # (B*N, Da)
        return action.reshape(self.num_envs, self.samples, -1)

    def act(self, obs: Observation) -> np.ndarray:
        """(B, Da): the teacher's action at each state (the first of its draws)."""
        return self.sample(obs)[:, 0]

    def reset(self, env_mask: np.ndarray | None = None) -> None:
        """Forget the history of finished envs (``env_mask`` (B,)) or of all envs."""
        mask = None if env_mask is None else np.repeat(np.asarray(env_mask, bool), self.samples)
        self.rollout.reset(mask)


def observation_stats(
    teacher: Policy, task: str, source: str | Path, episodes: int = 8, seed: int = 0
) -> dict[str, dict[str, list[float]]]:
    """Min/max of each state feature for the student's input normalization.

    A checkpoint teacher brings the statistics of its training data (so the student reads
    states on the teacher's scale); the scripted ``expert`` has none, so they are measured on
    ``episodes`` of its own episodes.
    """
    if str(source) != "expert":
        from robodistill.checkpoint import read_checkpoint

        norm = read_checkpoint(source).meta["normalization"]
        if all(k in norm for k in STATE_KEYS):
            return {k: norm[k] for k in STATE_KEYS}
    return _measured_stats(teacher, task, episodes, seed)


def _measured_stats(
    policy: Policy, task: str, episodes: int, seed: int
) -> dict[str, dict[str, list[float]]]:
    from robodistill.features import env_obs_to_features

    env = make_env(task, obs_mode="state")
    dims = state_dims(task)
    rows: list[np.ndarray] = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        rollout = policy.new_rollout(1, seed=seed + episode)
        done = False
        while not done:
            features = env_obs_to_features({k: v[None] for k, v in obs.items()})
            rows.append(join_features(features)[0])
            action = np.clip(rollout.select_action(features)[0], -1, 1)
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
    env.close()
    data = np.stack(rows)  # (T, Ds+De)
    split = dims[STATE]
    parts = {STATE_KEYS[0]: data[:, :split], STATE_KEYS[1]: data[:, split:]}
    return {k: {"min": v.min(0).tolist(), "max": v.max(0).tolist()} for k, v in parts.items()}
