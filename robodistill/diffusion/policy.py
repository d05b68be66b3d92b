"""Diffusion Policy (Chi et al., "Diffusion Policy: Visuomotor Policy Learning via Action
Diffusion", RSS 2023) as a :class:`robodistill.policy.Policy`.

The policy models p(A_t | O_t) for an action chunk A_t = a_{t-To+1 .. t-To+Tp} (B, Tp, Da)
given To observations O_t by denoising: a noise model ε_θ(a^k, k, O_t) is trained with

    L = E_{a⁰, k, ε} || ε − ε_θ(√ᾱ_k a⁰ + √(1−ᾱ_k) ε, k, O_t) ||²,   ε ~ N(0, I), k ~ U{0..K-1}

and actions are sampled by running the reverse process from a^K ~ N(0, I) (see
:mod:`robodistill.diffusion.sampler`). Of each chunk the actions [To-1, To-1+Ta) are executed
(receding horizon), then the policy re-plans.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from torch import nn

from robodistill.checkpoint import Checkpoint, CheckpointError, load_weights
from robodistill.configs import ConfigError, from_dict
from robodistill.diffusion.config import DiffusionConfig, SamplerName
from robodistill.diffusion.normalizer import MinMaxNormalizer
from robodistill.diffusion.obs_encoder import ObsEncoder
from robodistill.diffusion.sampler import NoiseModel, Sampler, make_sampler
from robodistill.diffusion.unet1d import ConditionalUnet1D
from robodistill.features import ACTION, IMAGE
from robodistill.policy import Observation, Policy, PolicyInfo, Rollout

FeatureShapes = Mapping[str, tuple[int, ...]]


class DiffusionModel(nn.Module):
    """Observation encoder + ConditionalUnet1D: the trainable part of Diffusion Policy."""

    def __init__(self, config: DiffusionConfig, feature_shapes: FeatureShapes) -> None:
        super().__init__()
        self.encoder = ObsEncoder(config.encoder, feature_shapes)
        self.unet = ConditionalUnet1D(
            action_dim=feature_shapes[ACTION][0],
            global_cond_dim=config.n_obs_steps * self.encoder.feature_dim,
            down_dims=config.unet.down_dims,
            diffusion_step_embed_dim=config.unet.diffusion_step_embed_dim,
            kernel_size=config.unet.kernel_size,
            n_groups=config.unet.n_groups,
        )

    def forward(
        self, obs: Mapping[str, torch.Tensor], noisy_actions: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        """ε_θ(a^k, k, O): normalized obs (B, To, ...), a^k (B, Tp, Da), k (B,) -> (B, Tp, Da)."""
        return self.unet(noisy_actions, timesteps, self.encoder(obs))


def normalize_obs(
    normalizer: MinMaxNormalizer, obs: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Min-max normalize the low-dim entries of ``obs``; images pass through as uint8."""
    return {k: normalizer.normalize(k, v) if k in normalizer else v for k, v in obs.items()}


def diffusion_loss(
    model: nn.Module,
    scheduler: DDPMScheduler,
    obs: Mapping[str, torch.Tensor],
    actions: torch.Tensor,
) -> torch.Tensor:
    """E ||ε − ε_θ(√ᾱ_k a⁰ + √(1−ᾱ_k) ε, k, O)||² on a batch of normalized data.

    ``model`` is a :class:`DiffusionModel` (or its DDP wrapper); ``actions`` a⁰ (B, Tp, Da).
    """
    noise = torch.randn_like(actions)
    k = torch.randint(0, scheduler.config.num_train_timesteps, (actions.shape[0],))
    noisy = scheduler.add_noise(actions, noise, k)  # √ᾱ_k a⁰ + √(1−ᾱ_k) ε
    return F.mse_loss(model(obs, noisy, k), noise)


class DiffusionPolicy(Policy):
    """Frozen EMA weights, normalizer and sampler; episode state is in :class:`DiffusionRollout`."""

    config_cls: type[DiffusionConfig] = DiffusionConfig
    """Config class read from a checkpoint; methods that extend the teacher subclass it."""
    model_cls: type[DiffusionModel] = DiffusionModel
    """Network built by :meth:`from_checkpoint` (e.g. a variable-noise model for SDP)."""

    def __init__(
        self,
        model: DiffusionModel,
        normalizer: MinMaxNormalizer,
        config: DiffusionConfig,
        feature_shapes: FeatureShapes,
        sampler: Sampler,
    ) -> None:
        self.model = model.eval().requires_grad_(False)
        self.normalizer = normalizer
        self.config = config
        self.feature_shapes = dict(feature_shapes)
        self.obs_keys = [k for k in self.feature_shapes if k != ACTION]
        self.sampler = sampler
        self.info = PolicyInfo(
            task=config.task,
            obs_mode=config.obs_mode,
            action_dim=feature_shapes[ACTION][0],
            n_obs_steps=config.n_obs_steps,
            horizon=config.horizon,
            n_action_steps=config.n_action_steps,
            embodiment=config.embodiment,
        )

    @classmethod
    def from_checkpoint(
        cls,
        ckpt: Checkpoint,
        *,
        num_inference_steps: int | None = None,
        scheduler: SamplerName | None = None,
    ) -> DiffusionPolicy:
        """Build the policy from a checkpoint; sampler defaults come from its ``[noise]`` config.

        ``scheduler="ddim", num_inference_steps=10`` gives few-step deterministic sampling.
        """
        try:
            config = from_dict(cls.config_cls, ckpt.config, source=str(ckpt.path / "config.json"))
        except ConfigError as err:
            raise CheckpointError(
                f"{err}; the checkpoint is from an incompatible version"
            ) from None
        for field in ("task", "obs_mode", "embodiment"):
            if ckpt.meta.get(field) != getattr(config, field):
                raise CheckpointError(
                    f"{ckpt.path / 'config.json'}: {field} {ckpt.meta.get(field)!r} contradicts "
                    f"config.{field} {getattr(config, field)!r}; save the checkpoint again"
                )
        feature_shapes = {k: tuple(v) for k, v in ckpt.meta["feature_shapes"].items()}
        model = cls.model_cls(config, feature_shapes)
        load_weights(model, ckpt)
        sampler = make_sampler(
            config.noise,
            scheduler or config.noise.sampler,
            num_inference_steps or config.noise.num_inference_steps,
        )
        normalizer = MinMaxNormalizer(ckpt.meta["normalization"])
        return cls(model, normalizer, config, feature_shapes, sampler)

    def new_rollout(self, num_envs: int = 1, seed: int | None = None) -> DiffusionRollout:
        """Fresh episode state for ``num_envs`` envs; ``seed`` seeds its sampling noise."""
        return DiffusionRollout(self, num_envs, 0 if seed is None else seed)

    @torch.inference_mode()
    def sample_chunk(
        self,
        obs_history: Mapping[str, torch.Tensor],
        noise: torch.Tensor,
        generator: torch.Generator | None = None,
        noise_model: NoiseModel | None = None,
    ) -> torch.Tensor:
        """Raw obs history (B, To, ...) and initial noise (B, Tp, Da) -> actions (B, Tp, Da),
        denoised by ``noise_model`` (default: the U-Net)."""
        global_cond = self.model.encoder(normalize_obs(self.normalizer, obs_history))  # (B, To*F)
        unet = self.model.unet if noise_model is None else noise_model
        actions = self.sampler(unet, global_cond, noise, generator)
        return self.normalizer.unnormalize(ACTION, actions)


class DiffusionRollout(Rollout):
    """Observation history (To steps) and action queue (Ta steps) of ``num_envs`` envs.

    The first observation of an episode fills the whole history (it is repeated To times).
    :meth:`select_action` re-plans an env when its queue is empty and then queues actions
    [To-1, To-1+Ta) of the new chunk, as in the paper; envs re-plan independently, so a
    masked :meth:`reset` of some envs leaves the others' queues untouched.
    """

    def __init__(self, policy: DiffusionPolicy, num_envs: int, seed: int = 0) -> None:
        super().__init__(num_envs)
        self.policy = policy
        cfg = policy.config
        self._steps = cfg.n_obs_steps
        self._chunk_start = cfg.n_obs_steps - 1
        self._ta = cfg.n_action_steps
        action_dim = policy.info.action_dim
        self._history = {
            key: torch.zeros(
                (num_envs, cfg.n_obs_steps, *policy.feature_shapes[key]),
                dtype=torch.uint8 if key == IMAGE else torch.float32,
            )
            for key in policy.obs_keys
        }
        self._fresh = torch.ones(num_envs, dtype=torch.bool)  # history not yet filled
        self._queue = torch.zeros(num_envs, self._ta, action_dim)
        self._queue_pos = torch.full((num_envs,), self._ta)  # == Ta: queue empty
        self._env_ids = torch.arange(num_envs)
        self._noise = torch.empty(num_envs, cfg.horizon, action_dim)
        self._generator = torch.Generator().manual_seed(seed)

    def observe(self, obs: Observation) -> None:
        """Append ``obs`` to every env's history without planning; fresh envs get it repeated
        To times. The runtime calls it for the observations that arrive between chunks."""
        for key, history in self._history.items():
            if key not in obs:
                raise KeyError(
                    f"observation lacks {key!r}, which this {self.policy.info.obs_mode}-mode "
                    f"policy needs; got {sorted(obs)} (convert env observations with "
                    "robodistill.features.env_obs_to_features)"
                )
            value = torch.as_tensor(obs[key])
            if value.shape != (self.num_envs, *history.shape[2:]):
                raise ValueError(
                    f"{key} has shape {tuple(value.shape)}, expected "
                    f"{(self.num_envs, *history.shape[2:])} (num_envs first)"
                )
            for t in range(self._steps - 1):  # shift left in place
                history[:, t].copy_(history[:, t + 1])
            history[:, -1].copy_(value)
            if self._fresh.any():
                history[self._fresh] = history[self._fresh, -1:]  # (n, 1, ...) -> (n, To, ...)
        self._fresh.fill_(False)

    def _sample(
        self, envs: torch.Tensor | None = None, noise_model: NoiseModel | None = None
    ) -> torch.Tensor:
        """A chunk (n, Tp, Da) for all envs, or for the env indices ``envs``."""
        history = self._history if envs is None else {k: v[envs] for k, v in self._history.items()}
        noise = self._noise if envs is None else self._noise[: len(envs)]
        torch.randn(noise.shape, generator=self._generator, out=noise)
        return self.policy.sample_chunk(history, noise, self._generator, noise_model)

    @torch.inference_mode()
    def predict_guided_chunk(
        self, obs: Observation, guide: Callable[[NoiseModel], NoiseModel]
    ) -> np.ndarray:
        """:meth:`predict_action_chunk` with ε_θ replaced by ``guide(ε_θ)`` for this chunk,
        e.g. real-time chunking's prefix guidance (:mod:`robodistill.runtime.rtc`)."""
        self.observe(obs)
        return self._sample(noise_model=guide(self.policy.model.unet)).numpy()

    @torch.inference_mode()
    def predict_action_chunk(self, obs: Observation) -> np.ndarray:
        self.observe(obs)
        return self._sample().numpy()

    @torch.inference_mode()
    def select_action(self, obs: Observation) -> np.ndarray:
        self.observe(obs)
        empty = self._queue_pos >= self._ta  # (B,)
        if empty.any():
            envs = None if empty.all() else empty.nonzero().squeeze(1)
            chunk = self._sample(envs)  # (n, Tp, Da)
            self._queue[empty] = chunk[:, self._chunk_start : self._chunk_start + self._ta]
            self._queue_pos[empty] = 0
        action = self._queue[self._env_ids, self._queue_pos]  # (B, Da)
        self._queue_pos += 1
        return action.numpy()

    def reset(self, env_mask: np.ndarray | None = None) -> None:
        mask = (
            torch.ones(self.num_envs, dtype=torch.bool)
            if env_mask is None
            else torch.as_tensor(np.asarray(env_mask, dtype=bool))
        )
        if mask.shape != (self.num_envs,):
            raise ValueError(f"env_mask has shape {tuple(mask.shape)}, expected ({self.num_envs},)")
        self._fresh |= mask
        self._queue_pos[mask] = self._ta
