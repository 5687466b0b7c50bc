"""``ga``: a genetic algorithm in torch that evolves a whole batch of instances at once.

Hybrid genetic search in the manner of HGS-CVRP (Vidal 2022), written as
tensor operations over instances x individuals so that a GPU, when present,
steps many instances together:

- ``encoding``: instances as padded tensors, solutions as flat sequences
  (routes separated by depot visits) with the fleet limit built in;
- ``split``: Prins' split of giant tours, batched, penalised, fleet-limited;
- ``operators``: order crossover (OX), OX on whole routes, and swap mutation of giant tours;
  ``eax``: edge assembly crossover (one pair at a time, on the host);
- ``local_search``: relocate, or-opt, swap, 2-opt*, 2-opt and empty-route
  moves over granular neighbourhoods, the best disjoint improving moves of
  every individual applied in parallel;
- ``population``: broken-pairs diversity, biased fitness, adaptive penalties;
- ``search``: the generation loop; ``rng``: batch-independent random numbers.

It models (A)TSP, (A)CVRP and (A)VRPTW with one vehicle type (its fixed
and unit distance cost included), a finite or unlimited fleet and one depot;
anything else is refused by name.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rota.problems.routing import RoutingInstance, RoutingSolution
from rota.solvers.base import ALL_CRITERIA, Result, Status, finish, reconfigured
from rota.solvers.routing import RoutingCapabilities, check_capabilities
from rota.solvers.stopping import Stop

#: Devices the ``device`` option accepts.
DEVICES = ("auto", "cpu", "cuda")
CROSSOVERS = ("ox", "routes", "mixed", "eax")
STARTS = ("nearest", "random")


class GASolver:
    """Batched hybrid genetic search (torch; CUDA when available).

    An iteration is one generation of the whole batch. The same seed gives
    the same result on one device (up to where a time limit cuts the run),
    and an instance solved in a batch gets the same result as solved alone
    with the same seed and generations. Warm starts join the initial
    population and the best feasible one is the first incumbent, so the result
    is never worse. Options: ``population`` (individuals kept per instance),
    ``offspring`` (children per generation), ``neighbours`` (granularity of
    the local search), ``crossover`` (``ox``: order crossover of giant tours;
    ``routes``: its slice made of whole routes of the first parent; ``mixed``:
    each child either way, evenly; ``eax``: edge assembly, one AB-cycle of the
    second parent exchanged into the first, on the host; default ``routes``, measured in
    ``benchmarks/ga/summary.md``), ``start`` (the initial giant tours: ``nearest``,
    randomised nearest-neighbour walks that keep a clock where there are time windows,
    the default; ``random`` permutations) and ``device`` (``auto``, ``cpu`` or ``cuda``).
    """

    name = "ga"
    problem = "routing"
    description = "Batched hybrid genetic search in torch (GPU when present)"
    capabilities = RoutingCapabilities(
        warm_start=True,
        stopping=ALL_CRITERIA,
        batched=True,
        gpu=True,
        asymmetric=True,
        time_windows=True,
        heterogeneous=False,
        multi_depot=False,
        uncapacitated=True,
    )
    options = ("population", "offspring", "neighbours", "crossover", "start", "device")

    def __init__(
        self,
        population: int = 25,
        offspring: int = 25,
        neighbours: int = 10,
        crossover: str = "routes",
        start: str = "nearest",
        device: str = "auto",
    ) -> None:
        for name, value, low in (
            ("population", population, 2),
            ("offspring", offspring, 1),
            ("neighbours", neighbours, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"ga: {name} must be an integer >= {low}, got {value!r}")
        if device not in DEVICES:
            raise ValueError(f"ga: device must be one of {', '.join(DEVICES)}, got {device!r}")
        if crossover not in CROSSOVERS:
            raise ValueError(
                f"ga: crossover must be one of {', '.join(CROSSOVERS)}, got {crossover!r}"
            )
        if start not in STARTS:
            raise ValueError(f"ga: start must be one of {', '.join(STARTS)}, got {start!r}")
        self.crossover, self.start = crossover, start
        self.population, self.offspring = population, offspring
        self.neighbours, self.device = neighbours, device

    def configure(self, **options: Any) -> GASolver:
        return reconfigured(self, self.options, options)

    def available(self) -> bool:
        # finding torch, not importing it: an import takes seconds, and listing
        # solvers must stay quick
        return importlib.util.find_spec("torch") is not None

    def preload(self) -> None:
        if self.available():
            import torch  # noqa: F401

            import rota.solvers.ga.encoding
            import rota.solvers.ga.search  # noqa: F401

    def supports(self, instance: RoutingInstance) -> str | None:
        # one vehicle type with a fixed or unit distance cost is modelled exactly
        caps = replace(self.capabilities, heterogeneous=True)
        reason = check_capabilities(self.name, caps, instance)
        if reason is None and len(instance.vehicle_types) > 1:
            reason = (
                f"{self.name} does not support heterogeneous fleets "
                f"({instance.name} has {len(instance.vehicle_types)} vehicle types)"
            )
        return reason

    def solve(
        self,
        instance: RoutingInstance,
        stop: Stop,
        seed: int,
        warm_start: Sequence[RoutingSolution] = (),
    ) -> Result:
        return self.solve_batch([instance], stop, seed, [tuple(warm_start)])[0]

    def solve_batch(
        self,
        instances: Sequence[RoutingInstance],
        stop: Stop,
        seed: int,
        warm_starts: Sequence[Sequence[RoutingSolution]],
    ) -> list[Result]:
        import torch

        from rota.solvers.ga.encoding import decode, encode, flat_from_routes
        from rota.solvers.ga.search import Settings, run

        device = self._device(torch)
        instances = list(instances)
        batch = encode(instances, device, self.neighbours)
        starts = []
        for b, solutions in enumerate(warm_starts):
            flats = [flat_from_routes(batch, b, s) for s in solutions]
            starts.append([f for f in flats if f is not None])
        settings = Settings(
            population=self.population, offspring=self.offspring, crossover=self.crossover,
            start=self.start,
        )  # fmt: skip
        outcome = run(batch, stop, seed, starts, settings)
        stats = {
            "generations": outcome.generations,
            "device": str(device),
            "batch_size": len(instances),
            "population": self.population,
            "offspring": self.offspring,
            "crossover": self.crossover,
            "start": self.start,
        }
        results = []
        for b, instance in enumerate(instances):
            solution, status = None, Status.NO_SOLUTION
            if bool(torch.isfinite(outcome.cost[b])):
                solution, status = decode(batch, b, outcome.best[b].cpu()), Status.FEASIBLE
            results.append(
                finish(
                    instance, solution, status, solver=self.name, seed=seed, stop=stop, stats=stats
                )  # fmt: skip
            )
        return results

    def _device(self, torch):
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("ga: device='cuda', but torch finds no CUDA device")
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


__all__ = ["DEVICES", "GASolver"]
