"""Does the binned student fail because of its decoding? Same weights, three decodings.

greedy: each dimension's most likely bin centre (the student as evaluated); sample: a bin
drawn from each categorical (as in the OPD rollouts); mean: the expected bin centre. reach's
actions are absolute joint targets, where a 32-bin grid is 0.2 rad wide on the shoulder.

    python binned_decoding.py out/refine/opd_reach_runs/sft_s0 \
        out/refine/opd_reach_runs/reverse_kl_s0
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from robodistill.evaluation import EvalConfig, evaluate
from robodistill.policy import Observation, StatelessRollout, load_policy
from robodistill.refine.binned import BinnedStudentPolicy
from robodistill.refine.envs import join_features


class _Decoded(BinnedStudentPolicy):
    def __init__(self, inner: BinnedStudentPolicy, decode: str) -> None:
        self.__dict__.update(inner.__dict__)
        self.decode = decode

    def new_rollout(self, num_envs: int = 1, seed: int | None = None) -> StatelessRollout:
        return StatelessRollout(self.act, num_envs)

    @torch.no_grad()
    def act(self, obs: Observation) -> np.ndarray:
        flat = torch.as_tensor(join_features(obs))
        logits = self.model(flat, torch.full((flat.shape[0],), self.task_index))  # (B, Da, K)
        if self.decode == "greedy":
            return self.centers[logits.argmax(-1)].numpy()
        if self.decode == "sample":
            return self.centers[torch.distributions.Categorical(logits=logits).sample()].numpy()
        return (logits.softmax(-1) * self.centers).sum(-1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("students", nargs="+")
    parser.add_argument("--episodes", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for path in args.students:
        student = load_policy(path)
        for decode in ("greedy", "sample", "mean"):
            config = EvalConfig(task=student.info.task, episodes=args.episodes, num_envs=10)
            result = evaluate(_Decoded(student, decode), config)
            print(f"{path} {decode}: success {result.success_rate:.0%}", flush=True)


if __name__ == "__main__":
    main()
