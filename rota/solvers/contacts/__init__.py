"""Solvers of the contact-scheduling family (:mod:`rota.problems.contacts`).

- :mod:`.greedy`: the operational baseline, one priority-ordered pass;
- :mod:`.cpsat`: CP-SAT with optional variable-length intervals, proofs and bounds;
- :mod:`.milp`: a disjunctive MILP (PuLP with CBC or HiGHS) for small instances;
- :mod:`.ga`: a random-key genetic algorithm whose individuals :mod:`.decoder` turns
  into schedules (greedy's rule, children redecoded from their parent's schedule),
  with optional fuzzy fitness (:mod:`.fuzzy`);
- :mod:`.neural`: a trained policy (:mod:`rota.models.contacts`) choosing the order in
  which the environment of :mod:`rota.envs.contacts` places requests by greedy's rule.

All of them work on the integer encoding of :mod:`.encoding`; :mod:`.bound` gives
an upper bound from antenna and spacecraft capacity (a linear programme, no search).
"""
