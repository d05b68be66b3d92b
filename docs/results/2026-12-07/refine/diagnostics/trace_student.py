"""One deterministic episode of a student from on_policy_bc.py, with the teacher's label at
every state it visits: where the hand, cube and pad are, what the student does, what the
teacher says.

    python trace_student.py on_policy_bc_0.05.pt 0.05 expert   # from this folder
"""

import sys

import numpy as np
import torch
from on_policy_bc import TASK, teacher_and_student  # run from this folder

from robodistill.refine.envs import make_vec_env, split_flat
from robodistill.refine.gaussian import policy_mean
from robodistill.refine.teacher import TeacherQuery


def main(weights: str, sigma: float, source: str) -> None:
    teacher, dims, student = teacher_and_student(source, sigma)
    student.load_state_dict(torch.load(weights))
    venv, query = make_vec_env(TASK, 1, "dense", 7), TeacherQuery(teacher, 1, seed=0)
    obs = venv.reset()
    np.set_printoptions(precision=3, suppress=True)
    for step in range(100):
        with torch.no_grad():
            action = policy_mean(student, torch.as_tensor(obs)).clamp(-1, 1).numpy()
        label = np.clip(query.act(split_flat(obs, dims)), -1, 1)
        if step % 4 == 0:
            hand, cube, pad = obs[0, :3], obs[0, 8:11], obs[0, 15:17]
            print(step, "hand", hand, "cube", cube, "pad", pad, "a", action[0], "label", label[0])
        obs, _, dones, infos = venv.step(action)
        if dones[0]:
            print("success", infos[0].get("is_success"))
            break


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3])
