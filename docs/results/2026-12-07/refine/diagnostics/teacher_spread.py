"""How spread out are the teacher's samples on the states an SFT student visits?

Rolls the binned SFT student out on reach (8 envs, 120 steps) and draws 16 DDIM-4 teacher
samples per visited state, as OPD does. Prints the per-dimension sample std and how many
states have a gap wider than 0.25 (normalized action units, 4 bins of 32) between two sorted
samples: a two-mode teacher (e.g. elbow-up vs elbow-down), which a per-dimension categorical
student cannot pair up.

    python teacher_spread.py runs/reach_teacher out/refine/opd_reach_runs/sft_s0
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from robodistill.policy import load_policy
from robodistill.refine.envs import make_vec_env, split_flat, state_dims
from robodistill.refine.teacher import TeacherQuery, load_teacher

NUM_ENVS, STEPS, SAMPLES, GAP = 8, 120, 16, 0.25


def main(teacher_dir: str, student_dir: str) -> None:
    torch.set_num_threads(1)
    options = {"scheduler": "ddim", "num_inference_steps": 4}
    query = TeacherQuery(load_teacher(teacher_dir, "reach", options), NUM_ENVS, SAMPLES)
    student = load_policy(student_dir)
    dims = state_dims("reach")
    venv = make_vec_env("reach", NUM_ENVS, "dense", 123)
    obs, stds, two_mode = venv.reset(), [], 0
    for _ in range(STEPS):
        features = split_flat(obs, dims)
        samples = query.sample(features)  # (E, N, Da)
        stds.append(samples.std(1))
        gaps = np.diff(np.sort(samples, axis=1), axis=1).max(1)  # (E, Da)
        two_mode += int((gaps > GAP).any(1).sum())
        obs, _, dones, _ = venv.step(student.act(features))
        query.reset(dones)
    std = np.concatenate(stds)
    print(
        f"teacher sample std per dim: median {np.median(std, 0)}, p90 {np.percentile(std, 90, 0)}"
    )
    print(f"states with a gap > {GAP} between samples: {two_mode}/{NUM_ENVS * STEPS}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
