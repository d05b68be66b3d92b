"""One optimizer update, shared by the trainers whose loop is loss -> step -> EMA."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from diffusers.training_utils import EMAModel


def update(
    loss: torch.Tensor,
    parameters: Iterable[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler,
    ema: EMAModel,
    grad_clip_norm: float,
    step: int,
) -> tuple[float, float]:
    """Backpropagate ``loss``, clip, step optimizer, LR schedule and EMA; (loss, grad norm).

    A non-finite loss stops training with a message that names the fix, before any update.
    """
    loss_value = loss.item()
    if not math.isfinite(loss_value):
        raise FloatingPointError(f"loss is {loss_value} at step {step + 1}; lower train.lr")
    parameters = list(parameters)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(parameters, grad_clip_norm)
    optimizer.step()
    lr_scheduler.step()
    ema.step(parameters)
    return loss_value, grad_norm.item()
