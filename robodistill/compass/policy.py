"""COMPASS checkpoints behind the shared :class:`~robodistill.policy.Policy` interface.

One checkpoint format (method ``compass``) serves the three stages; ``config.json["config"]``
is a :class:`StageInfo` naming the stage:

* ``base`` — drives any embodiment with ``clip(π(z))`` (it was trained on one);
* ``specialist`` — drives only its own embodiment with ``clip(π(z) + r(z, ō))`` (mean action);
* ``generalist`` — drives the embodiment it is bound to with ``clip(μ(z, d))``, where ``d`` is
  that embodiment's descriptor read from the task spec (:meth:`CompassPolicy.for_embodiment`,
  which ``load_policy(..., embodiment=...)`` and ``robodistill eval --embodiment`` call).

Every rollout keeps its own frame history (B, To, F); the policy object holds no episode state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robodistill.checkpoint import Checkpoint, CheckpointError, load_weights, save_checkpoint
from robodistill.compass.config import CompassConfig
from robodistill.compass.descriptor import check_descriptor, embodiment_descriptor
from robodistill.compass.envs import FRAME_KEYS, HistoryBuffer, frame_from_features
from robodistill.compass.model import BaseModel, GeneralistModel, SpecialistModel
from robodistill.configs import from_dict
from robodistill.features import ACTION
from robodistill.policy import Observation, Policy, PolicyInfo, Rollout

METHOD = "compass"
STAGES = ("base", "specialist", "generalist")


@dataclass
class StageInfo:
    """What a COMPASS checkpoint is: its stage, shapes and (generalist) descriptor layout."""

    stage: str
    compass: CompassConfig
    frame_dims: list[int]
    """Sizes of the features in ``FRAME_KEYS`` order."""
    action_dim: int
    demo_embodiment: str
    """The embodiment of the demonstrations the base imitated."""
    embodiment: str | None = None
    """The specialist's embodiment; the embodiment a base/generalist drives by default."""
    descriptor_names: list[str] = field(default_factory=list)
    descriptor_scale: list[float] = field(default_factory=list)
    descriptors: dict[str, list[float]] = field(default_factory=dict)
    """Generalist: the training embodiments' descriptors."""
    round: int | None = None
    """Generalist: DAgger rounds done (0 = distilled on the specialists' rollouts only)."""

    @property
    def frame_dim(self) -> int:
        return sum(self.frame_dims)


def build_model(info: StageInfo) -> torch.nn.Module:
    """The untrained network of a stage (weights come from the checkpoint or the trainer)."""
    base = BaseModel(info.frame_dim, info.action_dim, info.compass.base)
    if info.stage == "base":
        return base
    if info.stage == "specialist":
        return SpecialistModel(base, info.compass.residual.init_std)
    d = info.compass.distill
    return GeneralistModel(
        base, len(info.descriptor_scale), d.hidden_dim, (d.min_log_std, d.max_log_std)
    )


def save_stage(
    path: Path, info: StageInfo, model: torch.nn.Module, dataset: dict[str, Any]
) -> Path:
    """Write a stage checkpoint (shared format) at ``path``."""
    normalizer = model.base.normalizer if isinstance(model, SpecialistModel) else model.normalizer
    shapes = {k: (n,) for k, n in zip(FRAME_KEYS, info.frame_dims, strict=True)}
    return save_checkpoint(
        path,
        method=METHOD,
        config=info,
        state_dict=model.state_dict(),
        task=info.compass.task,
        obs_mode="state",
        feature_shapes={**shapes, ACTION: (info.action_dim,)},
        normalization={
            "frame_mean": normalizer.mean.tolist(),
            "frame_std": normalizer.std.tolist(),
        },
        dataset=dataset,
        embodiment=info.embodiment,
    )


def read_stage_info(ckpt: Checkpoint) -> StageInfo:
    """The :class:`StageInfo` of a compass checkpoint."""
    if ckpt.method != METHOD:
        raise CheckpointError(
            f"{ckpt.path} is a {ckpt.method!r} checkpoint, not a COMPASS one: pass a folder "
            "written by `robodistill refine compass` (<out>/base, <out>/specialists/<name>, "
            "<out>/generalist)"
        )
    return from_dict(StageInfo, ckpt.config, str(ckpt.path / "config.json"))


class CompassPolicy(Policy):
    """A loaded COMPASS stage; see the module docstring for what each stage drives."""

    def __init__(
        self,
        info: StageInfo,
        model: torch.nn.Module,
        embodiment: str | None = None,
        descriptor: np.ndarray | None = None,
        source: str = "",
    ) -> None:
        self.stage_info = info
        self.model = model.eval()
        self.source = source or f"a COMPASS {info.stage}"
        self.descriptor = descriptor
        embodiment = embodiment or info.embodiment or info.demo_embodiment
        self.info = PolicyInfo(
            task=info.compass.task,
            obs_mode="state",
            action_dim=info.action_dim,
            n_obs_steps=info.compass.base.n_obs_steps,
            embodiment=embodiment,
        )
        if info.stage == "generalist" and descriptor is None:
            self.descriptor = self._descriptor_of(embodiment)

    # ----- binding to an embodiment ------------------------------------------------------
    def for_embodiment(self, embodiment: str) -> CompassPolicy:
        """This stage driving ``embodiment`` (an error for another embodiment's specialist)."""
        info = self.stage_info
        if info.stage == "specialist" and embodiment != info.embodiment:
            raise ValueError(
                f"{self.source} is the specialist for {info.embodiment!r}, not {embodiment!r}: "
                f"pass --embodiment {info.embodiment}, or the specialist trained for "
                f"{embodiment!r} (<out>/specialists/{embodiment}), or the generalist"
            )
        descriptor = self._descriptor_of(embodiment) if info.stage == "generalist" else None
        if info.stage == "base":
            from robodistill.envs import get_spec

            get_spec(info.compass.task).resolve_embodiment(embodiment)
        return CompassPolicy(info, self.model, embodiment, descriptor, self.source)

    def with_descriptor(self, descriptor: np.ndarray, embodiment: str | None = None) -> Policy:
        """The generalist driving a body described by a raw descriptor vector (D,)."""
        if self.stage_info.stage != "generalist":
            raise ValueError(
                f"only a generalist takes a descriptor; {self.source} is a {self.stage_info.stage}"
            )
        d = check_descriptor(
            descriptor, len(self.stage_info.descriptor_scale), self.stage_info.descriptor_names
        )
        return CompassPolicy(self.stage_info, self.model, embodiment, d, self.source)

    def _descriptor_of(self, embodiment: str) -> np.ndarray:
        d = embodiment_descriptor(self.stage_info.compass.task, embodiment)
        return check_descriptor(
            d, len(self.stage_info.descriptor_scale), self.stage_info.descriptor_names
        )

    # ----- actions -----------------------------------------------------------------------
    @torch.no_grad()
    def distribution(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Mean (B, Da) and log σ (B, Da; None for the base) for frame histories (B, To, F)."""
        h = torch.as_tensor(history, dtype=torch.float32)
        if self.stage_info.stage == "base":
            return self.model(h).numpy(), None
        if self.stage_info.stage == "specialist":
            mean, log_std = self.model.distribution(h)
        else:
            d = torch.as_tensor(self.descriptor).expand(h.shape[0], -1)  # (B, D)
            mean, log_std = self.model.distribution(h, d)
        return mean.numpy(), log_std.numpy()

    def act(self, history: np.ndarray) -> np.ndarray:
        """The executed (mean) action, clipped to [-1, 1]: (B, Da) float32."""
        mean, _ = self.distribution(history)
        return np.clip(mean, -1.0, 1.0).astype(np.float32)

    def new_rollout(self, num_envs: int = 1, seed: int | None = None) -> CompassRollout:
        return CompassRollout(self, num_envs)


class CompassRollout(Rollout):
    """The frame histories of B envs for one :class:`CompassPolicy`."""

    def __init__(self, policy: CompassPolicy, num_envs: int) -> None:
        super().__init__(num_envs)
        self.policy = policy
        self.history = HistoryBuffer(num_envs, policy.info.n_obs_steps)

    def select_action(self, obs: Observation) -> np.ndarray:
        return self.policy.act(self.history.push(frame_from_features(obs)))  # (B, Da)

    def predict_action_chunk(self, obs: Observation) -> np.ndarray:
        return self.select_action(obs)[:, None, :]  # (B, 1, Da): one action per step

    def reset(self, env_mask: np.ndarray | None = None) -> None:
        self.history.reset(env_mask)


def load_compass_policy(ckpt: Checkpoint, **options: Any) -> CompassPolicy:
    """``POLICY_LOADERS["compass"]``: any stage's checkpoint as a policy."""
    if options:
        raise ValueError(
            f"a COMPASS policy takes no sampler options, got {sorted(options)}: drop them"
        )
    info = read_stage_info(ckpt)
    if info.stage not in STAGES:
        raise CheckpointError(f"{ckpt.path}: unknown COMPASS stage {info.stage!r}")
    if info.stage == "specialist" and "obs_branch.weight" not in ckpt.state_dict:
        raise CheckpointError(
            f"{ckpt.path} is a specialist from an older COMPASS whose residual read only the "
            "latent z (it now reads z and the current frame): re-run `robodistill refine "
            "compass` with a new --out (or delete <out>/specialists and <out>/generalist of that "
            "run to retrain them on its base)"
        )
    model = build_model(info)
    load_weights(model, ckpt)
    return CompassPolicy(info, model, source=str(ckpt.path))
