"""Batched torch environments for learned solvers (rl4co style); see :mod:`rota.envs.routing`."""
