"""Solvers of the placement family: ``greedy``, ``milp``, ``cpsat``, ``ga`` and ``neural``.

They are declared in :attr:`rota.problems.placement.PlacementProblem.solvers`
and imported only when used; the shared pieces (constructions, models, the
layer decomposition) live beside them.
"""
