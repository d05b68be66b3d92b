"""COMPASS (Liu et al., "COMPASS: Cross-embodiment Mobility Policy via Residual RL and Skill
Synthesis", NVIDIA 2025), scaled to a CPU, on the ``nav`` task.

1. :mod:`~robodistill.compass.base` — imitation base from one embodiment's demos: history
   encoder + latent dynamics head (world model) + BC mobility policy head.
2. :mod:`~robodistill.compass.residual` — per embodiment, PPO (stable-baselines3) on a residual
   over the frozen base: a = clip(π(z) + r(z, ō) + σε), ō the normalized current frame, r
   starting at zero, σ = 0.1.
3. :mod:`~robodistill.compass.distill` — one generalist conditioned on the embodiment descriptor
   (:mod:`~robodistill.compass.descriptor`), trained with KL(specialist ‖ generalist) on the
   specialists' rollouts, then DAgger rounds.

:mod:`~robodistill.compass.pipeline` runs the stages with resume; :mod:`~robodistill.compass.policy`
loads every stage's checkpoint behind the shared policy interface; the CLI is
``robodistill refine compass`` (:mod:`~robodistill.compass.cli`) and the measurements
``robodistill bench compass``. Nothing is imported here, so ``--help`` stays fast.
"""
