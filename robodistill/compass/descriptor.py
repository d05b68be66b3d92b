"""The embodiment descriptor the COMPASS generalist is conditioned on.

The paper (Liu et al., "COMPASS", NVIDIA 2025) conditions its generalist on a one-hot of the
training embodiments. Here the descriptor is the embodiment's physical parameters as read from
the task spec (``env.unwrapped.descriptor()``; for ``nav`` the kinematics one-hot followed by
size and limits, laid out as ``robodistill.envs.nav.DESCRIPTOR_NAMES``), so a variant that no
stage trained on (a new ``[embodiments.<name>]`` table) can still be described to the policy.

Raw parameters have different units, so the policy sees ``d / scale`` where ``scale`` is the
largest magnitude of each entry over the training embodiments (1 where all are 0); the scale
is stored in the generalist's checkpoint.
"""

from __future__ import annotations

import numpy as np

from robodistill.envs import get_spec, make_env


def embodiment_descriptor(task: str, embodiment: str) -> np.ndarray:
    """The descriptor (D,) float32 of ``embodiment`` as defined in ``task``'s spec.

    An embodiment the spec does not define is a ValueError that lists the known ones.
    """
    get_spec(task).resolve_embodiment(embodiment)  # names the spec and the known embodiments
    env = make_env(task, embodiment=embodiment).unwrapped
    try:
        if not hasattr(env, "descriptor"):
            raise ValueError(
                f"task {task!r} does not describe its embodiments (its env has no "
                "descriptor()); COMPASS needs a multi-embodiment task such as 'nav'"
            )
        return np.asarray(env.descriptor(), dtype=np.float32)
    finally:
        env.close()


def descriptor_scale(descriptors: np.ndarray) -> np.ndarray:
    """Per-entry scale (D,): max |d| over the training embodiments (N, D), 1 where all are 0."""
    scale = np.abs(descriptors).max(axis=0)
    return np.where(scale > 0, scale, 1.0).astype(np.float32)


def check_descriptor(descriptor: np.ndarray, expected: int, names: list[str] | None) -> np.ndarray:
    """``descriptor`` as (D,) float32, or a ValueError if its length is not ``expected``."""
    d = np.asarray(descriptor, dtype=np.float32).reshape(-1)
    if d.shape[0] != expected:
        layout = f" ({', '.join(names)})" if names else ""
        raise ValueError(
            f"embodiment descriptor has {d.shape[0]} values, but the generalist was trained on "
            f"{expected}{layout}: build it with embodiment_descriptor(task, name) "
            "(robodistill.compass.descriptor) from the same spec layout, or retrain the "
            "generalist on the new layout"
        )
    if not np.all(np.isfinite(d)):
        raise ValueError(f"embodiment descriptor has NaN or inf: {d}")
    return d
