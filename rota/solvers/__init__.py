"""Solver backends behind one interface (see :mod:`rota.solvers.base`)."""
