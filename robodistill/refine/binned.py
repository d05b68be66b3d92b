"""The VLA-OPD student: actions tokenized per dimension into bins, a categorical per dimension.

As VLAs tokenize actions (RT-2, OpenVLA), each action dimension d in [-1, 1] is cut into K
equal bins; the student is an MLP that maps the flat state (min-max normalized per task and
clamped, :func:`~robodistill.refine.gaussian.normalize_state`; the statistics are buffers saved
with the weights) and a one-hot task id to logits (B, Da, K), so
π_θ(a | s) = Π_d Cat(a_d; softmax(logits_d)). Student and teacher distributions are then both
categorical over the same bins, and KL divergences between them are exact sums over K.

As a robodistill :class:`~robodistill.policy.Policy` the student acts greedily (the most likely
bin of each dimension, decoded to its centre); it has no episode state (To = Tp = Ta = 1).
A student SFT'd on several tasks (same observation and action sizes) is evaluated on one of
them with ``load_policy(path, student_task="reach")``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from robodistill.checkpoint import Checkpoint, load_weights
from robodistill.features import ACTION
from robodistill.policy import Observation, Policy, PolicyInfo, Rollout, StatelessRollout
from robodistill.refine.envs import STATE_KEYS, join_features
from robodistill.refine.gaussian import normalization_affine, normalize_state

TaskStats = Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]]


def bin_centers(bins: int) -> torch.Tensor:
    """(K,) centres of K equal bins covering [-1, 1]."""
    edges = torch.linspace(-1.0, 1.0, bins + 1)
    return (edges[:-1] + edges[1:]) / 2


def to_bins(actions: torch.Tensor, bins: int) -> torch.Tensor:
    """Actions (..., Da) in [-1, 1] -> bin indices (..., Da) in [0, K) (outside: edge bins)."""
    index = torch.floor((actions.clamp(-1.0, 1.0) + 1.0) / 2.0 * bins).long()
    return index.clamp(0, bins - 1)


def histogram(samples: torch.Tensor, bins: int, smoothing: float) -> torch.Tensor:
    """Teacher samples (B, N, Da) -> per-dimension distributions (B, Da, K), add-α smoothed.

    p(k) = (count_k + α) / (N + K α): α > 0 keeps log p finite, which bounds the reverse KL.
    """
    index = to_bins(samples, bins).transpose(1, 2)  # (B, Da, N)
    counts = torch.zeros(*index.shape[:2], bins).scatter_add_(
        2, index, torch.ones(index.shape, dtype=torch.float32)
    )  # (B, Da, K)
    return (counts + smoothing) / (samples.shape[1] + bins * smoothing)


class BinnedMLP(nn.Module):
    """(flat state (B, D), task index (B,)) -> logits (B, Da, K)."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        bins: int,
        hidden: Sequence[int],
        stats: Sequence[Mapping[str, Mapping[str, Sequence[float]]]],
    ) -> None:
        super().__init__()
        self.action_dim, self.bins, self.num_tasks = action_dim, bins, len(stats)
        affine = [normalization_affine(s) for s in stats]
        self.register_buffer("mid", torch.stack([m for m, _ in affine]))  # (tasks, D)
        self.register_buffer("scale", torch.stack([s for _, s in affine]))  # (tasks, D)
        layers: list[nn.Module] = []
        width = obs_dim + self.num_tasks
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, action_dim * bins))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        x = normalize_state(obs, self.mid[task], self.scale[task])  # (B, D), ~[-1, 1]
        onehot = nn.functional.one_hot(task, self.num_tasks).float()  # (B, tasks)
        logits = self.net(torch.cat([x, onehot], dim=1))  # (B, Da*K)
        return logits.view(-1, self.action_dim, self.bins)  # (B, Da, K)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Per-state mean entropy over dimensions (B,), in nats (max log K)."""
    log_p = logits.log_softmax(-1)
    return -(log_p.exp() * log_p).sum(-1).mean(-1)


class BinnedStudentPolicy(Policy):
    """The binned student on one of its tasks; greedy decoding to bin centres."""

    def __init__(self, model: BinnedMLP, tasks: Sequence[str], task: str) -> None:
        if task not in tasks:
            raise ValueError(
                f"this student was trained on tasks {list(tasks)}, not {task!r}: pass "
                f"student_task= one of them"
            )
        self.model = model.eval()
        self.task_index = list(tasks).index(task)
        self.centers = bin_centers(model.bins)
        self.info = PolicyInfo(task=task, obs_mode="state", action_dim=model.action_dim)

    def new_rollout(self, num_envs: int = 1, seed: int | None = None) -> Rollout:
        return StatelessRollout(self.act, num_envs)

    @torch.no_grad()
    def act(self, obs: Observation) -> np.ndarray:
        """(B, Da) greedy actions for a batch of feature-dict observations."""
        flat = torch.as_tensor(join_features(obs))
        task = torch.full((flat.shape[0],), self.task_index)
        return self.centers[self.model(flat, task).argmax(-1)].numpy()


def build_binned_model(config: Mapping[str, Any], shapes: Mapping, stats: TaskStats) -> BinnedMLP:
    """The student network described by an OPD config dict, feature shapes and task stats."""
    tasks = list(config["sft"]["datasets"])
    obs_dim = sum(shapes[k][0] for k in STATE_KEYS)
    return BinnedMLP(
        obs_dim, shapes[ACTION][0], config["bins"], config["hidden"], [stats[t] for t in tasks]
    )


def load_binned_student(
    ckpt: Checkpoint, student_task: str | None = None, **options: Any
) -> BinnedStudentPolicy:
    """The loader registered for ``opd`` checkpoints; ``student_task`` defaults to its task."""
    if options:
        raise ValueError(
            f"an OPD student takes only student_task=, got {sorted(options)}: drop the others"
        )
    model = build_binned_model(ckpt.config, ckpt.meta["feature_shapes"], ckpt.meta["normalization"])
    load_weights(model, ckpt)
    tasks = list(ckpt.config["sft"]["datasets"])
    return BinnedStudentPolicy(model, tasks, student_task or ckpt.task)
