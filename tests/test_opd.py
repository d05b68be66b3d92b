"""VLA-OPD: exact objectives and their entropy behaviour, the teacher histogram, a tiny SFT +
on-policy run (checkpoint, SFT reuse, forgetting check, resume after a kill) and errors raised
before training."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from robodistill.configs import ConfigError
from robodistill.data.collect import CollectConfig, collect
from robodistill.policy import load_policy
from robodistill.refine import opd, opd_command
from robodistill.refine.binned import bin_centers, entropy, histogram, to_bins
from robodistill.refine.opd import (
    OBJECTIVES,
    OPDConfig,
    forward_kl,
    hard_ce,
    load_config,
    reverse_kl,
    train_opd,
)

torch.set_num_threads(1)


def test_bins_and_histogram() -> None:
    centers = bin_centers(4)
    assert torch.allclose(centers, torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    assert to_bins(torch.tensor([-1.0, -0.6, 0.0, 0.99, 1.0, 3.0]), 4).tolist() == [
        0,
        0,
        2,
        3,
        3,
        3,
    ]
    samples = torch.tensor([[[-0.9, 0.1], [-0.8, 0.2], [0.9, 0.3]]])  # (B=1, N=3, Da=2)
    probs = histogram(samples, bins=4, smoothing=0.5)  # (1, 2, 4)
    assert torch.allclose(probs.sum(-1), torch.ones(1, 2))
    assert torch.allclose(probs[0, 0], torch.tensor([2.5, 0.5, 0.5, 1.5]) / 5)


def test_objectives_are_exact() -> None:
    teacher = torch.tensor([[[0.7, 0.2, 0.1]]])  # (B=1, Da=1, K=3)
    logits = torch.log(torch.tensor([[[0.2, 0.5, 0.3]]]))
    p, q = logits.softmax(-1)[0, 0], teacher[0, 0]
    assert reverse_kl(logits, teacher).item() == pytest.approx((p * (p / q).log()).sum().item())
    assert forward_kl(logits, teacher).item() == pytest.approx((q * (q / p).log()).sum().item())
    assert hard_ce(logits, teacher).item() == pytest.approx(-math.log(0.2), rel=1e-5)
    assert reverse_kl(teacher.log(), teacher).item() == pytest.approx(0.0, abs=1e-6)
    assert forward_kl(teacher.log(), teacher).item() == pytest.approx(0.0, abs=1e-6)


def fit(objective: str, teacher: torch.Tensor, steps: int = 500) -> float:
    """Entropy of a unimodal student (a discretized Gaussian over the K bins, learnable mean
    and width) fitted to ``teacher`` (1, 1, K) under an objective."""
    k = torch.arange(teacher.shape[-1], dtype=torch.float32)
    mean = torch.tensor(1.5, requires_grad=True)  # between the modes (bins 1 and 4), nearer 1
    log_width = torch.tensor(math.log(0.7), requires_grad=True)
    optimizer = torch.optim.Adam([mean, log_width], lr=0.05)
    for _ in range(steps):
        logits = (-((k - mean) ** 2) / (2 * log_width.exp() ** 2)).view(1, 1, -1)
        loss = OBJECTIVES[objective](logits, teacher).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return entropy(logits.detach()).item()


def test_reverse_kl_seeks_a_mode_forward_covers_hard_ce_collapses() -> None:
    """A bimodal teacher and a unimodal student: forward KL spreads over both modes (highest
    entropy), reverse KL settles on one mode, hard CE collapses onto one bin."""
    teacher = histogram(torch.tensor([[[-0.6]] * 8 + [[0.6]] * 8]).float(), 6, 0.05)  # (1,1,6)
    h_forward, h_reverse, h_hard = (
        fit(o, teacher) for o in ("forward_kl", "reverse_kl", "hard_ce")
    )
    assert h_forward > h_reverse + 1.0
    assert h_hard < 0.2


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("demos")
    for task, episodes in (("push", 2), ("reach", 3)):
        collect(CollectConfig(task=task, episodes=episodes, root=root / task, workers=1))
    return {"push": str(root / "push"), "reach": str(root / "reach")}


def tiny(demos: dict[str, str], **overrides) -> OPDConfig:
    config = load_config("opd/tiny", "push", **overrides)
    return dataclasses.replace(config, sft=dataclasses.replace(config.sft, datasets=demos))


def test_tiny_run_shares_sft_and_checks_forgetting(demos, tmp_path) -> None:
    first = train_opd(tiny(demos), "expert", tmp_path / "rkl", quiet=True)
    assert first["env_steps"] == 64
    for key in ("sft", "final"):
        assert 0 <= first[key]["success_rate"] <= 1
        assert 0 < first[key]["entropy"] <= math.log(8) + 1e-6
    assert set(first["other_tasks"]["after_sft"]) == {"reach"}
    assert set(first["other_tasks"]["after_opd"]) == {"reach"}
    sft = first["sft_checkpoint"]
    stamp = (tmp_path / "rkl" / "sft" / "model.safetensors").stat().st_mtime_ns
    second = train_opd(tiny(demos, objective="hard_ce"), "expert", tmp_path / "hce", sft)
    assert (tmp_path / "rkl" / "sft" / "model.safetensors").stat().st_mtime_ns == stamp
    assert second["sft"]["success_rate"] == first["sft"]["success_rate"]  # same start
    reach = load_policy(tmp_path / "rkl", student_task="reach")
    obs = {
        "observation.state": np.zeros((2, 6), np.float32),
        "observation.environment_state": np.zeros((2, 2), np.float32),
    }
    assert reach.new_rollout(2).select_action(obs).shape == (2, 2)
    with pytest.raises(ValueError, match="student_task"):
        load_policy(tmp_path / "rkl", student_task="nav")
    assert train_opd(tiny(demos), "expert", tmp_path / "rkl") == first  # finished: reused


def test_killed_run_resumes_after_its_last_checkpoint(demos, tmp_path, monkeypatch) -> None:
    out, save = tmp_path / "opd", opd._save

    def save_then_die(*args) -> None:
        save(*args)
        if len(args) > 5:  # a run checkpoint (step 32), not the SFT one
            raise KeyboardInterrupt

    monkeypatch.setattr(opd, "_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_opd(tiny(demos), "expert", out, quiet=True)
    monkeypatch.undo()
    summary = train_opd(tiny(demos), "expert", out, quiet=True)
    assert "resumed at step 32" in (out / "train.log").read_text()
    assert [p["step"] for p in summary["curve"]] == [0, 32, 64]
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [0, 32, 64]
    assert set(summary["other_tasks"]["after_sft"]) == {"reach"}  # saved before the kill


def test_bad_input_fails_before_training(demos, tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown objective 'kl'.*reverse_kl"):
        tiny(demos, objective="kl")
    parser = argparse.ArgumentParser()
    opd_command.add_arguments(parser)
    args = parser.parse_args(
        ["--teacher", "expert", "--task", "push", "--recipe", "opd/tiny", "--objective", "js"]
        + ["--out", str(tmp_path / "x")]
    )
    with pytest.raises(ValueError, match="unknown objective 'js'"):
        opd_command.run(args)
    with pytest.raises(ConfigError, match="for task 'push', not 'pick_place'"):
        load_config("opd/tiny", "pick_place")
    mixed = dataclasses.replace(
        tiny(demos), sft=dataclasses.replace(tiny(demos).sft, datasets={**demos, "pick_place": "x"})
    )
    with pytest.raises(ConfigError, match="drop 'pick_place'"):
        train_opd(mixed, "expert", tmp_path / "mixed")
    assert not (tmp_path / "x").exists()
