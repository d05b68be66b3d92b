"""RL refinement of a slow teacher into a compact student that trains on its own rollouts.

Two methods, each in its own module, sharing small pieces:

* :mod:`robodistill.refine.rpd` -- Refined Policy Distillation (Jülg et al., 2025): PPO on a
  Gaussian MLP student plus a behaviour-cloning term towards the teacher's action on the states
  the student visits (``robodistill refine rpd``).
* :mod:`robodistill.refine.opd` -- VLA-OPD on-policy distillation (2026): SFT on demos, then
  per-step reverse KL to the teacher's binned action distribution on the student's own states,
  with forward KL and hard cross-entropy as the contrasted objectives (``robodistill refine opd``).

Shared pieces: :mod:`~robodistill.refine.envs` (flat state observations, vectorized envs),
:mod:`~robodistill.refine.teacher` (querying and sampling any robodistill policy as a teacher),
:mod:`~robodistill.refine.gaussian` (the RPD student as a robodistill ``Policy``),
:mod:`~robodistill.refine.binned` (the OPD student: per-dimension categorical over action bins),
:mod:`~robodistill.refine.ppo_aux` (SB3 PPO with named auxiliary loss terms) and
:mod:`~robodistill.refine.curves` (learning-curve evaluation and plots).
"""
