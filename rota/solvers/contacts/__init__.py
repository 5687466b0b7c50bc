"""Solvers of the contact-scheduling family (:mod:`rota.problems.contacts`).

- :mod:`.greedy`: the operational baseline, one priority-ordered pass;
- :mod:`.cpsat`: CP-SAT with optional variable-length intervals, proofs and bounds;
- :mod:`.milp`: a disjunctive MILP (PuLP with CBC or HiGHS) for small instances.

All three work on the integer encoding of :mod:`.encoding`.
"""
