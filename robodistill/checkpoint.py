"""Policy checkpoints: one directory format for every method, and the one loader.

A checkpoint is a directory::

    config.json          method, task, obs_mode, feature shapes, normalization stats,
                         dataset fingerprint, package version, the method's full config,
                         and the SHA-256 of model.safetensors
    model.safetensors    inference weights (the EMA weights for diffusion teachers)
    training_state/      optional, for exact resume: tensors.safetensors + state.json

No pickle anywhere: tensors are safetensors, everything else JSON. Directories are written
to a temporary sibling and moved into place with ``os.replace``, so a reader never sees a
half-written checkpoint. Every problem found while reading is a :class:`CheckpointError`
that names the file and says what to do.

:func:`load_checkpoint_policy` dispatches on ``config.json["method"]`` through
:data:`POLICY_LOADERS`, an explicit dict that later methods extend::

    POLICY_LOADERS["consistency"] = my_loader  # my_loader(ckpt: Checkpoint, **options) -> Policy
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from robodistill.policy import Policy

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TRAINING_STATE_DIR = "training_state"
_STATE_TENSORS = "tensors.safetensors"
_STATE_JSON = "state.json"
_REQUIRED_FIELDS = (
    "method",
    "task",
    "obs_mode",
    "feature_shapes",
    "normalization",
    "config",
    "weights_sha256",
)


class CheckpointError(ValueError):
    """A checkpoint directory is missing, incomplete, corrupt or for another task."""


@dataclass(frozen=True)
class Checkpoint:
    """A validated checkpoint read from disk."""

    path: Path
    """The directory the files were read from (symlinks resolved)."""
    meta: dict[str, Any]
    """Contents of config.json."""
    state_dict: dict[str, torch.Tensor]
    """Contents of model.safetensors."""

    @property
    def method(self) -> str:
        return self.meta["method"]

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def config(self) -> dict[str, Any]:
        """The method's config dataclass, as a dict."""
        return self.meta["config"]


@dataclass
class TrainingState:
    """What a trainer needs besides the weights to resume exactly (see robodistill.training)."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]


PolicyLoader = Callable[..., Policy]


def _load_diffusion(ckpt: Checkpoint, **sampler_options: Any) -> Policy:
    if "sampler" in sampler_options:  # rollout variants: RTI warm start, SDP streaming
        from robodistill.fast import load_fast_policy

        return load_fast_policy(ckpt, **sampler_options)
    from robodistill.diffusion.policy import DiffusionPolicy

    return DiffusionPolicy.from_checkpoint(ckpt, **sampler_options)


def _load_edm(ckpt: Checkpoint, **sampler_options: Any) -> Policy:
    from robodistill.students.edm import load_edm_policy

    return load_edm_policy(ckpt, **sampler_options)


def _load_consistency(ckpt: Checkpoint, **sampler_options: Any) -> Policy:
    from robodistill.students.consistency import load_consistency_policy

    return load_consistency_policy(ckpt, **sampler_options)


def _load_sdp(ckpt: Checkpoint, **sampler_options: Any) -> Policy:
    from robodistill.fast import load_fast_policy

    return load_fast_policy(ckpt, **sampler_options)


def _load_compass(ckpt: Checkpoint, **options: Any) -> Policy:
    from robodistill.compass.policy import load_compass_policy

    return load_compass_policy(ckpt, **options)


def _load_rpd(ckpt: Checkpoint, **options: Any) -> Policy:
    from robodistill.refine.gaussian import load_gaussian_student

    return load_gaussian_student(ckpt, **options)


def _load_opd(ckpt: Checkpoint, **options: Any) -> Policy:
    from robodistill.refine.binned import load_binned_student

    return load_binned_student(ckpt, **options)


POLICY_LOADERS: dict[str, PolicyLoader] = {
    "diffusion": _load_diffusion,
    "edm": _load_edm,
    "consistency": _load_consistency,
    "sdp": _load_sdp,
    "compass": _load_compass,
    "rpd": _load_rpd,
    "opd": _load_opd,
}
"""method name (config.json "method") -> ``loader(ckpt, **sampler_options) -> Policy``."""


def save_checkpoint(
    path: str | Path,
    *,
    method: str,
    config: Any,
    state_dict: Mapping[str, torch.Tensor],
    task: str,
    obs_mode: str,
    feature_shapes: Mapping[str, tuple[int, ...]],
    normalization: Mapping[str, Any],
    dataset: Mapping[str, Any],
    embodiment: str | None = None,
    step: int | None = None,
    training_state: TrainingState | None = None,
) -> Path:
    """Write a checkpoint directory at ``path`` atomically and return ``path``.

    ``config`` is the method's config dataclass (stored as a dict); ``dataset`` is the
    fingerprint of the training data (see :func:`robodistill.data.loading.dataset_fingerprint`).
    An existing checkpoint at ``path`` is replaced.
    """
    from robodistill import __version__

    path = Path(path)
    with _atomic_directory(path) as tmp:
        weights = tmp / WEIGHTS_FILE
        tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
        save_file(tensors, weights, metadata={"method": method, "step": str(step)})
        meta = {
            "method": method,
            "task": task,
            "obs_mode": obs_mode,
            "embodiment": embodiment,
            "step": step,
            "feature_shapes": {k: list(v) for k, v in feature_shapes.items()},
            "normalization": dict(normalization),
            "dataset": dict(dataset),
            "robodistill_version": __version__,
            "weights_sha256": _sha256(weights),
            "config": dataclasses.asdict(config),
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        if training_state is not None:
            state_dir = tmp / TRAINING_STATE_DIR
            state_dir.mkdir()
            save_file(
                {k: v.detach().contiguous().cpu() for k, v in training_state.tensors.items()},
                state_dir / _STATE_TENSORS,
            )
            (state_dir / _STATE_JSON).write_text(json.dumps(training_state.meta, indent=2) + "\n")
    return path


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate config.json and model.safetensors of the checkpoint at ``path``."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"checkpoint {path} does not exist: pass a directory written by `robodistill train` "
            f"(it holds {CONFIG_FILE} and {WEIGHTS_FILE})"
        )
    if not path.is_dir():
        raise CheckpointError(f"{path} is a file: pass the checkpoint directory that contains it")
    config_file = path / CONFIG_FILE
    if not config_file.is_file():
        raise CheckpointError(
            f"{config_file} is missing: {path} is not a robodistill checkpoint (a training run "
            "writes one into its --out directory at its first checkpoint)"
        )
    directory = config_file.resolve().parent  # one consistent snapshot if it is a symlink
    config_file = directory / CONFIG_FILE
    try:
        meta = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"{config_file} is not valid JSON ({err}): the checkpoint is corrupt; "
            "save it again or use another checkpoint"
        ) from None
    missing = [f for f in _REQUIRED_FIELDS if not isinstance(meta, dict) or f not in meta]
    if missing:
        raise CheckpointError(
            f"{config_file} lacks field(s) {missing}: it was not written by "
            "robodistill.checkpoint.save_checkpoint; save the checkpoint again"
        )
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(
            f"{weights} is missing: the checkpoint is incomplete; copy the whole directory again "
            "or save the checkpoint again"
        )
    if _sha256(weights) != meta["weights_sha256"]:
        raise CheckpointError(
            f"{weights} is truncated or corrupt (its SHA-256 differs from the one in "
            f"{CONFIG_FILE}): copy the checkpoint again or save it again"
        )
    try:
        state_dict = load_file(weights)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(
            f"{weights} is truncated or corrupt ({err}): copy the checkpoint again or save it again"
        ) from None
    return Checkpoint(path=directory, meta=meta, state_dict=state_dict)


def load_checkpoint_policy(
    path: str | Path, task: str | None = None, **sampler_options: Any
) -> Policy:
    """Load the policy saved at ``path``; ``task``, when given, must match the checkpoint's.

    ``sampler_options`` go to the method's loader, e.g. ``num_inference_steps=10,
    scheduler="ddim"`` for diffusion.
    """
    ckpt = read_checkpoint(path)
    if task is not None and task != ckpt.task:
        raise CheckpointError(
            f"{ckpt.path / CONFIG_FILE}: the checkpoint was trained for task {ckpt.task!r}, "
            f"not {task!r}; pass --task {ckpt.task} or a checkpoint trained on {task!r}"
        )
    loader = POLICY_LOADERS.get(ckpt.method)
    if loader is None:
        raise CheckpointError(
            f"{ckpt.path / CONFIG_FILE}: unknown method {ckpt.method!r}; known methods: "
            f"{sorted(POLICY_LOADERS)} (is this robodistill version older than the checkpoint?)"
        )
    return loader(ckpt, **sampler_options)


def load_weights(module: nn.Module, ckpt: Checkpoint) -> None:
    """Strict ``load_state_dict`` whose errors name the file and every mismatched key."""
    expected = module.state_dict()
    problems = []
    missing = sorted(set(expected) - set(ckpt.state_dict))
    unexpected = sorted(set(ckpt.state_dict) - set(expected))
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    problems += [
        f"{k}: file has shape {tuple(ckpt.state_dict[k].shape)}, model needs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in ckpt.state_dict and ckpt.state_dict[k].shape != v.shape
    ]
    if problems:
        raise CheckpointError(
            f"{ckpt.path / WEIGHTS_FILE} does not fit the model described by its "
            f"{CONFIG_FILE}: " + "; ".join(problems) + ". The two files come from different "
            "runs or versions; save the checkpoint again"
        )
    module.load_state_dict(ckpt.state_dict)


def load_training_state(path: str | Path) -> TrainingState:
    """Read ``<path>/training_state``; a CheckpointError if it is missing or corrupt."""
    state_dir = Path(path) / TRAINING_STATE_DIR
    try:
        tensors = load_file(state_dir / _STATE_TENSORS)
        meta = json.loads((state_dir / _STATE_JSON).read_text())
    except (SafetensorError, OSError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{state_dir} cannot be read ({err}): resume is impossible from this checkpoint; "
            "delete it (or the whole --out directory) to start over"
        ) from None
    return TrainingState(tensors=tensors, meta=meta)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _atomic_directory(path: Path) -> Iterator[Path]:
    """Yield a temp dir next to ``path``; on success move it to ``path`` with os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        tmp.chmod(0o755)
        if path.exists():  # os.replace cannot overwrite a non-empty directory
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
