"""RPD without its PPO term: on-policy BC of the Gaussian student on pick_place.

    python on_policy_bc.py TEACHER SIGMA ITERATIONS BATCH   # e.g. expert 0.05 30 64

The student (the RPD network and input normalization) acts with N(mu, SIGMA^2); the teacher
labels every visited state (as RPD's rollout does); after each rollout of 8 x 128 steps, 10
epochs of MSE on mu (Adam 3e-4, grad-norm 0.5, as RPD's recipe). Every 10 rollouts: success
of the deterministic student on 20 seeded episodes. Prints the last BC loss and the success.
"""

import sys

import numpy as np
import torch

from robodistill.envs import get_spec
from robodistill.refine.curves import CurveConfig, evaluate_student
from robodistill.refine.envs import make_vec_env, split_flat, state_dims
from robodistill.refine.gaussian import (
    GaussianStudentPolicy,
    build_sb3_policy,
    policy_kwargs,
    policy_mean,
)
from robodistill.refine.teacher import TeacherQuery, load_teacher, observation_stats

TASK, NUM_ENVS, ROLLOUT = "pick_place", 8, 128


def teacher_and_student(source: str, sigma: float):  # -> (teacher, dims, SB3 policy)
    """The teacher (1 sampling step unless ``expert``) and an untrained RPD student network."""
    options = {"num_inference_steps": 1} if source != "expert" else {}
    dims, teacher = state_dims(TASK), load_teacher(source, TASK, options)
    stats = observation_stats(teacher, TASK, source)
    kwargs = policy_kwargs([256, 256], float(np.log(sigma)), stats)
    student = build_sb3_policy(sum(dims.values()), get_spec(TASK).action_dim, kwargs)
    return teacher, dims, student


def main(source: str, sigma: float, iterations: int, batch: int) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    teacher, dims, student = teacher_and_student(source, sigma)
    optimizer = torch.optim.Adam(student.parameters(), 3e-4)
    venv, query = make_vec_env(TASK, NUM_ENVS, "dense", 0), TeacherQuery(teacher, NUM_ENVS, seed=0)
    obs = venv.reset()
    for iteration in range(1, iterations + 1):
        states, labels = [], []
        for _ in range(ROLLOUT):
            with torch.no_grad():
                mean = policy_mean(student, torch.as_tensor(obs)).numpy()
            states.append(obs.copy())
            labels.append(np.clip(query.act(split_flat(obs, dims)), -1, 1))
            action = np.clip(mean + sigma * rng.standard_normal(mean.shape), -1, 1)
            obs, _, dones, _ = venv.step(action)
            query.reset(dones)
        x = torch.tensor(np.concatenate(states))
        y = torch.tensor(np.concatenate(labels), dtype=torch.float32)
        for _ in range(10):
            for index in torch.randperm(len(x)).split(batch):
                loss = ((policy_mean(student, x[index]) - y[index]) ** 2).sum(-1).mean()
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(student.parameters(), 0.5)
                optimizer.step()
        if iteration % 10 == 0:
            result = evaluate_student(GaussianStudentPolicy(student, TASK), TASK, CurveConfig())
            print(iteration * NUM_ENVS * ROLLOUT, f"bc {loss.item():.3f}", result["success_rate"])
    torch.save(student.state_dict(), f"on_policy_bc_{sigma}.pt")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
