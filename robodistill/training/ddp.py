"""DistributedDataParallel on CPU with the gloo backend, as launched by ``torchrun``.

``torchrun --nproc_per_node 2 -m robodistill train ...`` sets RANK, WORLD_SIZE, MASTER_ADDR
and MASTER_PORT; :func:`init_distributed` joins that process group. Without WORLD_SIZE > 1
every helper here is a no-op, so trainers run unchanged in a single process.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files."""
        return self.rank == 0


def init_distributed() -> DistInfo:
    """Join the gloo process group when launched with WORLD_SIZE > 1.

    Collectives time out after ``ROBODISTILL_DIST_TIMEOUT`` seconds (default 1800), so a rank
    that died turns into an error on the others instead of a silent hang.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo()
    if not dist.is_initialized():
        seconds = float(os.environ.get("ROBODISTILL_DIST_TIMEOUT", "1800"))
        dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=seconds))
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size())


def shutdown_distributed(info: DistInfo) -> None:
    """Leave the process group joined by :func:`init_distributed`.

    All ranks meet at a barrier first: rank 0 hosts the TCP store, and if it tore the group
    down while another rank was still finishing, that rank could wait on it forever.
    """
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap_ddp(model: nn.Module, info: DistInfo) -> nn.Module:
    """DDP wrapper (which broadcasts rank 0's weights) or the model itself."""
    return DistributedDataParallel(model) if info.enabled else model


def gather(tensor: torch.Tensor, info: DistInfo) -> list[torch.Tensor]:
    """Every rank's copy of ``tensor`` (same shape and dtype on all ranks), rank order."""
    if not info.enabled:
        return [tensor]
    copies = [torch.empty_like(tensor) for _ in range(info.world_size)]
    dist.all_gather(copies, tensor.contiguous())
    return copies


def check_replicas_in_sync(model: nn.Module, info: DistInfo) -> None:
    """Raise if any rank's parameters differ from rank 0's (a DDP bug would show here)."""
    if not info.enabled:
        return
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    reference = flat.clone()
    dist.broadcast(reference, src=0)
    mismatch = torch.tensor([float(not torch.equal(flat, reference))])
    dist.all_reduce(mismatch)
    if mismatch.item():
        raise RuntimeError(
            f"DDP replicas diverged: {int(mismatch.item())} rank(s) differ from rank 0"
        )
