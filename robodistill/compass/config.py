"""Config dataclasses of COMPASS; recipes in ``policies/compass/*.toml`` override their fields.

Each stage has its own table (``[base]``, ``[residual]``, ``[distill]``); derived values are
computed in ``__post_init__``, never in the TOML files.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BaseConfig:
    """Stage 1: the imitation base (history encoder + latent dynamics + BC policy head)."""

    n_obs_steps: int = 3
    """To: observation frames the encoder reads (the newest last)."""
    latent_dim: int = 64
    """Size of the latent state z that every later stage reads."""
    hidden_dim: int = 256
    steps: int = 4000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-5
    min_std: float = 0.1
    """Floor of the observation normalizer's std. Features (nearly) constant in one
    embodiment's demos — a diff drive's lateral velocity — would otherwise be scaled by
    ~1/0.001 and turn another embodiment's small values into huge encoder inputs."""
    dynamics_weight: float = 1.0
    """Weight of the world-model terms (next latent + next observation) against the BC term."""
    log_every: int = 200

    def __post_init__(self) -> None:
        if self.n_obs_steps < 1 or self.latent_dim < 1 or self.hidden_dim < 1:
            raise ValueError("base.n_obs_steps, base.latent_dim and base.hidden_dim must be >= 1")
        if self.min_std <= 0:
            raise ValueError("base.min_std must be positive")
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("base.steps and base.batch_size must be >= 1 and base.lr > 0")


@dataclass
class ResidualConfig:
    """Stage 2: PPO (stable-baselines3) on a residual over the frozen base, per embodiment."""

    total_steps: int = 100_000
    """Environment steps per specialist (the same budget is given to PPO from scratch)."""
    num_envs: int = 8
    n_steps: int = 256
    """Steps per env per PPO rollout (rollout size = num_envs x n_steps)."""
    batch_size: int = 256
    n_epochs: int = 5
    lr: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5
    init_std: float = 0.1
    """Initial std σ₀ of the residual's Gaussian (the authors' code uses 0.1). The mean starts
    at the base whatever σ₀; σ₀ sets how far PPO explores around it (nav's recipe uses 1.0,
    the scratch baseline's SB3 default: at 0.1 the car specialist plateaus far below scratch)."""
    critic_hidden: int = 256
    reward_mode: str = "dense"

    def __post_init__(self) -> None:
        if self.total_steps < self.num_envs * self.n_steps:
            raise ValueError(
                f"residual.total_steps {self.total_steps} is less than one PPO rollout "
                f"(num_envs x n_steps = {self.num_envs * self.n_steps}): raise it"
            )
        if (self.num_envs * self.n_steps) % self.batch_size:
            raise ValueError("residual.batch_size must divide num_envs x n_steps")
        if self.init_std <= 0:
            raise ValueError("residual.init_std must be positive")
        if self.reward_mode not in ("dense", "sparse"):
            raise ValueError("residual.reward_mode must be 'dense' or 'sparse'")


@dataclass
class DistillConfig:
    """Stage 3: KL(teacher || student) distillation into one descriptor-conditioned policy."""

    hidden_dim: int = 256
    episodes_per_embodiment: int = 60
    """Specialist rollouts recorded per embodiment before the first fit."""
    stochastic_teacher: bool = True
    """Record the specialists sampling from their Gaussians (wider state coverage)."""
    num_envs: int = 8
    steps: int = 3000
    """Gradient steps of the first fit on the specialists' rollouts."""
    dagger_rounds: int = 2
    """Rounds on states the generalist visits, labelled by the specialists (0 = none)."""
    dagger_episodes: int = 30
    """Generalist episodes per embodiment per round."""
    dagger_steps: int = 1500
    """Gradient steps after each round, on all data gathered so far."""
    batch_size: int = 512
    lr: float = 1e-3
    min_log_std: float = -5.0
    max_log_std: float = 1.0
    log_every: int = 200

    def __post_init__(self) -> None:
        if self.episodes_per_embodiment < 1 or self.steps < 1 or self.batch_size < 1:
            raise ValueError("distill.episodes_per_embodiment, steps, batch_size must be >= 1")
        if self.dagger_rounds < 0 or self.dagger_episodes < 1:
            raise ValueError("distill.dagger_rounds must be >= 0, dagger_episodes >= 1")
        if not self.min_log_std < self.max_log_std:
            raise ValueError("distill.min_log_std must be below max_log_std")


@dataclass
class CompassConfig:
    """The whole pipeline: which embodiments, and one table per stage."""

    task: str = "nav"
    embodiments: list[str] = field(default_factory=lambda: ["diff_drive", "holonomic", "car"])
    """Embodiments that get a specialist and that the generalist is distilled on."""
    seed: int = 0
    base: BaseConfig = field(default_factory=BaseConfig)
    residual: ResidualConfig = field(default_factory=ResidualConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def __post_init__(self) -> None:
        if not self.embodiments:
            raise ValueError("embodiments must name at least one embodiment of the task")
        if len(set(self.embodiments)) != len(self.embodiments):
            raise ValueError(f"embodiments {self.embodiments} has duplicates")
