"""COMPASS stage 3: distil the specialists into one descriptor-conditioned generalist.

As in the paper, the generalist matches each specialist's Gaussian action distribution on the
specialist's own rollouts by minimizing

    L = E_(h, e) [ KL( N(μ_e(h), σ_e²) ‖ N(μ_θ(z(h), d_e), σ_θ(z(h), d_e)²) ) ]

where e is the embodiment the state was recorded on and d_e its descriptor (the paper uses a
one-hot of the training embodiments; here the spec's physical parameters). Then, DAgger-style,
each round drives the current generalist on every embodiment, labels the states it visits with
that embodiment's specialist, adds them to the data and fits again; the on-policy success of
each round is logged, so whether the rounds help is measured (see ``bench compass``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from robodistill.compass.config import CompassConfig
from robodistill.compass.model import GeneralistModel, gaussian_kl
from robodistill.compass.policy import CompassPolicy
from robodistill.compass.residual import run_episodes
from robodistill.training.run_log import RunLog


@dataclass
class DistillData:
    """Aggregated (history, descriptor, teacher mean, teacher log σ) rows."""

    histories: list[np.ndarray] = field(default_factory=list)  # (n, To, F) each
    descriptors: list[np.ndarray] = field(default_factory=list)  # (n, D)
    means: list[np.ndarray] = field(default_factory=list)  # (n, Da)
    log_stds: list[np.ndarray] = field(default_factory=list)  # (n, Da)

    def add(self, history: np.ndarray, descriptor: np.ndarray, teacher: CompassPolicy) -> None:
        """Label frame histories (B, To, F) with ``teacher``'s Gaussian."""
        mean, log_std = teacher.distribution(history)
        self.histories.append(history.astype(np.float32))
        self.descriptors.append(np.repeat(descriptor[None], len(history), axis=0))
        self.means.append(mean)
        self.log_stds.append(log_std)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(
            torch.from_numpy(np.concatenate(x))
            for x in (self.histories, self.descriptors, self.means, self.log_stds)
        )

    def __len__(self) -> int:
        return sum(len(h) for h in self.histories)


def record(
    cfg: CompassConfig,
    data: DistillData,
    embodiment: str,
    descriptor: np.ndarray,
    teacher: CompassPolicy,
    driver: Callable[[np.ndarray], np.ndarray],
    episodes: int,
    seed: int,
) -> list[dict]:
    """Drive ``episodes`` with ``driver``; every visited history is labelled by ``teacher``."""

    def act(history: np.ndarray) -> np.ndarray:
        data.add(history, descriptor, teacher)
        return driver(history)

    return run_episodes(act, cfg, embodiment, episodes, cfg.distill.num_envs, seed)


def teacher_driver(teacher: CompassPolicy, stochastic: bool, seed: int):
    """The specialist's action: its mean, or a sample from its Gaussian; clipped."""
    rng = np.random.default_rng(seed)

    def drive(history: np.ndarray) -> np.ndarray:
        mean, log_std = teacher.distribution(history)
        if stochastic:
            mean = mean + np.exp(log_std) * rng.standard_normal(mean.shape)
        return np.clip(mean, -1.0, 1.0).astype(np.float32)

    return drive


def fit(
    model: GeneralistModel,
    optimizer: torch.optim.Optimizer,
    data: DistillData,
    steps: int,
    batch_size: int,
    generator: torch.Generator,
    log: RunLog,
    first_step: int,
    log_every: int,
) -> int:
    """``steps`` Adam steps on mean KL(teacher ‖ student) over random minibatches."""
    history, descriptor, mean_t, log_std_t = data.tensors()
    model.train()
    step = first_step
    for _ in range(steps):
        rows = torch.randint(len(history), (batch_size,), generator=generator)
        mean_s, log_std_s = model.distribution(history[rows], descriptor[rows])
        loss = gaussian_kl(mean_t[rows], log_std_t[rows], mean_s, log_std_s).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        log.advance()
        if step % log_every == 0:
            log.metrics(step, loss=loss.item(), samples=float(len(history)))
    model.eval()
    return step
