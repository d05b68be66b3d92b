"""Fast diffusion policies without distillation: rollout variants selected by load options.

* ``sampler="rti"`` (:mod:`robodistill.fast.rti`): RTI-DP warm-starts every solve from the
  previous chunk and runs only the last K′ (``rti_steps``) denoising steps; works on any
  diffusion (or SDP) checkpoint, no retraining.
* ``sampler="sdp"`` (:mod:`robodistill.fast.sdp`): Streaming Diffusion Policy's rolling buffer
  of h chunks at increasing noise; needs a checkpoint trained with variable noise
  (``robodistill train --recipe sdp/...``).
* ``sampler="chunk"``: plain chunk sampling (the default of a diffusion checkpoint).

``load_policy(path, sampler="rti", rti_steps=2, rti_renoise=True)``; ``scheduler`` and
``num_inference_steps`` choose the schedule RTI takes its last steps from and SDP streams over.
:mod:`robodistill.fast.lipschitz` estimates the Lipschitz constant of ε_θ and RTI-DP's
contraction bound for every K′.
"""

from __future__ import annotations

from typing import Any

from robodistill.checkpoint import Checkpoint, CheckpointError
from robodistill.policy import Policy

SAMPLERS = ("chunk", "rti", "sdp")
"""Values of the ``sampler`` load option."""


def load_fast_policy(
    ckpt: Checkpoint,
    *,
    sampler: str | None = None,
    rti_steps: int | None = None,
    rti_renoise: bool | None = None,
    rti_discrete_snap: float | None = None,
    **base_options: Any,
) -> Policy:
    """Load a diffusion or SDP checkpoint with the rollout variant ``sampler``.

    ``base_options`` (``scheduler``, ``num_inference_steps``) build the underlying policy;
    ``sampler`` defaults to ``sdp`` for SDP checkpoints and ``chunk`` otherwise.
    """
    from robodistill.diffusion.policy import DiffusionPolicy
    from robodistill.fast.rti import RTIPolicy
    from robodistill.fast.sdp import SDPPolicy, StreamingPolicy

    sampler = sampler or ("sdp" if ckpt.method == "sdp" else "chunk")
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {list(SAMPLERS)}")
    rti_options = {
        "rti_steps": rti_steps,
        "rti_renoise": rti_renoise,
        "rti_discrete_snap": rti_discrete_snap,
    }
    given = sorted(k for k, v in rti_options.items() if v is not None)
    if sampler != "rti" and given:
        raise ValueError(f"{given} only apply to --sampler rti, not {sampler!r}")
    if sampler == "rti" and rti_steps is None:
        raise ValueError("--sampler rti needs --rti-steps K' (denoising steps per control step)")
    if sampler == "sdp" and ckpt.method != "sdp":
        raise CheckpointError(
            f"{ckpt.path}: the SDP buffer sampler needs a model trained with variable noise, "
            f"but this is a {ckpt.method!r} checkpoint; train one with `robodistill train "
            "--recipe sdp/<recipe>` or use --sampler rti/chunk with this one"
        )
    policy_cls = SDPPolicy if ckpt.method == "sdp" else DiffusionPolicy
    base = policy_cls.from_checkpoint(ckpt, **base_options)
    if sampler == "chunk":
        return base
    if sampler == "sdp":
        return StreamingPolicy(base)
    extra = {} if rti_renoise is None else {"renoise": rti_renoise}
    if rti_discrete_snap is not None:
        extra["discrete_snap"] = rti_discrete_snap
    return RTIPolicy(base, rti_steps, **extra)
