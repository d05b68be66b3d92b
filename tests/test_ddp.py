"""Two-process DistributedDataParallel training on CPU (gloo): replicas stay identical."""

from __future__ import annotations

import socket
import time

import torch
import torch.multiprocessing as mp
from helpers_data import make_dataset, tiny_config
from safetensors.torch import load_file, save_file

DEADLINE_S = 240.0
"""A hung rank fails the test (with its stack on stderr) instead of stalling CI."""


def _worker(rank: int, world_size: int, port: int, data: str, out: str, tmp: str) -> None:
    import faulthandler
    import os

    faulthandler.dump_traceback_later(DEADLINE_S - 30, exit=True)
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        ROBODISTILL_DIST_TIMEOUT="120",
    )
    torch.set_num_threads(1)
    from robodistill.diffusion.train import train

    model = train(tiny_config(steps=3, batch_size=8), data, out)
    save_file(model.state_dict(), f"{tmp}/rank{rank}.safetensors")
    faulthandler.cancel_dump_traceback_later()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join(context: mp.ProcessContext) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            alive = [i for i, p in enumerate(context.processes) if p.is_alive()]
            for p in context.processes:
                p.kill()
            raise AssertionError(f"DDP ranks {alive} still running after {DEADLINE_S:.0f} s")


def test_two_process_ddp_replicas_agree(tmp_path):
    data = make_dataset(tmp_path / "data", num_episodes=2, episode_len=12)
    out = tmp_path / "run"
    args = (2, _free_port(), str(data), str(out), str(tmp_path))
    _join(mp.spawn(_worker, args=args, nprocs=2, join=False))
    rank0 = load_file(tmp_path / "rank0.safetensors")
    rank1 = load_file(tmp_path / "rank1.safetensors")
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    assert (out / "model.safetensors").exists()  # written by rank 0
    assert "2 process(es)" in (out / "train.log").read_text()
