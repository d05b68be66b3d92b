"""How good is the policy OPD distills, before any student is involved?

Runs on a task, 20 seeded episodes each: (a) the teacher queried as OPD queries it (a fresh
chunk per env step, action To-1, one draw), and (b) the greedy decoding of the teacher's
per-dimension 16-sample histogram (bin centre of each dimension's mode): what a student that
matched the OPD target exactly would execute.

    python opd_targets.py --teacher runs/reach_teacher --task reach
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from robodistill.evaluation import EvalConfig, evaluate
from robodistill.policy import Observation, Policy, Rollout
from robodistill.refine.binned import bin_centers, histogram
from robodistill.refine.teacher import TeacherQuery, load_teacher


class _QueryRollout(Rollout):
    def __init__(self, query: TeacherQuery, decode: str, bins: int) -> None:
        super().__init__(query.num_envs)
        self.query, self.decode, self.bins = query, decode, bins

    def select_action(self, obs: Observation) -> np.ndarray:
        draws = self.query.sample(obs)  # (B, N, Da)
        if self.decode == "draw":
            return draws[:, 0]
        probs = histogram(torch.as_tensor(draws, dtype=torch.float32), self.bins, 0.1)
        return bin_centers(self.bins)[probs.argmax(-1)].numpy()  # (B, Da)

    def predict_action_chunk(self, obs: Observation) -> np.ndarray:
        return self.select_action(obs)[:, None]

    def reset(self, env_mask: np.ndarray | None = None) -> None:
        self.query.reset(env_mask)


class _QueryPolicy(Policy):
    def __init__(self, teacher: Policy, samples: int, decode: str, bins: int) -> None:
        self.teacher, self.samples, self.decode, self.bins = teacher, samples, decode, bins
        self.info = teacher.info

    def new_rollout(self, num_envs: int = 1, seed: int | None = None) -> Rollout:
        query = TeacherQuery(self.teacher, num_envs, self.samples, seed or 0)
        return _QueryRollout(query, self.decode, self.bins)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--episodes", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    teacher = load_teacher(args.teacher, args.task, {"scheduler": "ddim", "num_inference_steps": 4})
    for name, samples, decode in (("one draw per step", 1, "draw"), ("16-sample mode", 16, "mode")):
        policy = _QueryPolicy(teacher, samples, decode, bins=32)
        result = evaluate(policy, EvalConfig(task=args.task, episodes=args.episodes, num_envs=10))
        print(
            f"{args.task} teacher, {name}: success {result.success_rate:.0%}, "
            f"return {result.mean_return:.1f}, length {result.mean_length:.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
