"""The genetic search: one generation steps every instance of the batch at once.

A generation picks ``offspring`` pairs of parents per instance by binary
tournament on biased fitness, crosses their giant tours (OX, or OX on whole
routes of the first parent, or edge assembly: ``Settings.crossover``), mutates a few,
splits them at the current penalty weights, improves them by local search,
and repairs the infeasible ones (local search at ten times the weights, as
HGS-CVRP does). The weights then move towards a target share of feasible
offspring, and the population and offspring are cut back to ``population``
by biased fitness (cost rank plus diversity rank, clones last, the best
kept). The best feasible solution ever seen per instance is kept apart.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from rota.solvers.ga.eax import edge_assembly
from rota.solvers.ga.encoding import Batch
from rota.solvers.ga.local_search import Routes, local_search
from rota.solvers.ga.operators import order_crossover, route_crossover, swap_mutation
from rota.solvers.ga.population import adapt, biased_fitness, broken_pairs, survivors
from rota.solvers.ga.rng import CounterRng
from rota.solvers.ga.split import giant_tours, split
from rota.solvers.stopping import Stop

#: Index stride between individuals in random draws: larger than any client count.
_STRIDE = 1 << 24
#: Initial individuals searched and repaired before the others.
_SEARCHED_FIRST = 4
#: Building the other 21 initial individuals took 1.6 to 2.2 times as long as building
#: the first 4 (X-n502 to X-n1001, one core).
_REST_BUILD_RATIO = 2.0


@dataclass(frozen=True)
class Settings:
    population: int = 25
    offspring: int = 25
    elite: int = 4
    close: int = 3
    target_feasible: float = 0.2
    mutation: float = 0.2
    repair_factor: float = 10.0
    #: ``ox``, ``routes`` (OX on whole routes of the mother), ``mixed`` (half each) or
    #: ``eax`` (edge assembly, :mod:`rota.solvers.ga.eax`)
    crossover: str = "routes"
    #: Initial giant tours: ``nearest`` (randomised nearest-neighbour walks, with a clock
    #: where there are time windows: :func:`_nearest_tours`) or ``random`` permutations
    start: str = "nearest"
    #: How far :func:`_nearest_tours` strays from the nearest client
    spread: float = 1.0


@dataclass
class Outcome:
    best: torch.Tensor  # (B, M) flat sequences of the best feasible solutions
    cost: torch.Tensor  # (B,) their normalised cost; inf where none was found
    generations: int
    weights: torch.Tensor  # (B, 2) penalty weights at the end


class _Scored:
    """Sequences with their distance and violations (B, X, ...)."""

    def __init__(self, batch: Batch, seq: torch.Tensor, weights: torch.Tensor) -> None:
        self.seq = seq
        self.distance, self.excess, self.warp = Routes(batch, seq, weights).totals()

    def cost(self, weights: torch.Tensor) -> torch.Tensor:
        return self.distance + weights[:, :1] * self.excess + weights[:, 1:] * self.warp

    def cat(self, other: _Scored) -> _Scored:
        out = object.__new__(_Scored)
        for name in ("seq", "distance", "excess", "warp"):
            setattr(out, name, torch.cat([getattr(self, name), getattr(other, name)], dim=1))
        return out

    def select(self, index: torch.Tensor) -> _Scored:
        out = object.__new__(_Scored)
        out.seq = self.seq.gather(1, index.unsqueeze(2).expand(-1, -1, self.seq.shape[2]))
        for name in ("distance", "excess", "warp"):
            setattr(out, name, getattr(self, name).gather(1, index))
        return out


def _initial_weights(batch: Batch) -> torch.Tensor:
    """One unit of excess load or time warp costs about as much as the longest arc."""
    longest = batch.cost.flatten(1).amax(dim=1)
    heaviest = batch.demand.amax(dim=1)
    load = torch.where(heaviest > 0, longest / heaviest.clamp(min=1e-300), 1.0)
    if batch.timed:
        slowest = batch.travel.flatten(1).amax(dim=1)
        warp = torch.where(slowest > 0, longest / slowest.clamp(min=1e-300), 1.0)
    else:
        warp = torch.ones_like(load)
    return torch.stack([load, warp], dim=1)


def _client_keys(
    batch: Batch, rng: CounterRng, count: int, first: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One uniform key per individual and client (B, count, N) for individuals ``first``
    to ``first + count - 1``, drawn by the index ``individual * _STRIDE + client`` so
    that neither padding nor building the individuals in parts shifts it, with 2 (after
    every real key) for padding; also that index and the mask of real clients."""
    B, N = batch.size, batch.nodes - 1
    nodes = torch.arange(1, N + 1, device=batch.device)
    individuals = torch.arange(first, first + count, device=batch.device)
    index = individuals.view(count, 1) * _STRIDE + nodes
    valid = (nodes <= batch.n.view(B, 1, 1)).expand(B, count, N)
    keys = torch.where(valid, rng.uniform(index).expand(B, count, N), 2.0)
    return keys, index, valid


def _random_tours(batch: Batch, rng: CounterRng, count: int, first: int = 0) -> torch.Tensor:
    order = _client_keys(batch, rng, count, first)[0].argsort(dim=2)
    tours = (order + 1).where(order + 1 <= batch.n.view(batch.size, 1, 1), 0)
    return tours


def _nearest_tours(
    batch: Batch, rng: CounterRng, count: int, spread: float, first: int = 0
) -> torch.Tensor:
    """Giant tours of individuals ``first`` to ``first + count - 1`` that walk to the
    nearest client left, each individual from its own random client and with its own
    bias: client ``c`` looks ``1 + spread * u`` times as far as it is (``u`` uniform,
    one per individual and client), so the walks differ.

    With time windows the walk keeps a clock. It goes on to the client nearest by cost
    plus waiting (priced at the initial time-warp weight) among those it reaches before
    their windows close; when it reaches none, it starts again from the depot at the
    client whose window closes first (its closing time biased the same way). Without
    windows nothing is ever waited for or missed, so an instance walks the same alone or
    in a batch with windowed ones.

    A random tour leaves the local search some hundred moves to make on 100 clients,
    one per route and round; a walk like this leaves it a few, and with time windows
    its split is often feasible as it is.
    """
    B, N = batch.size, batch.nodes - 1
    keys, index, valid = _client_keys(batch, rng, count, first)
    bias = (1.0 + spread * rng.uniform(index)).expand(B, count, N)
    # row c - 1 of the client-to-client costs of an instance is client c's way out
    arcs = batch.cost[:, 1:, 1:]
    current = keys.argmin(dim=2)  # client index - 1
    visited = (~valid).scatter(2, current.unsqueeze(2), True)
    tours = torch.zeros((B, count, N), dtype=torch.int64, device=batch.device)
    tours[:, :, 0] = torch.where((batch.n > 0).view(B, 1), current + 1, 0)
    clock = _Clock(batch, count) if batch.timed else None
    arrival = clock.from_depot(current) if clock is not None else None
    for step in range(1, N):
        gather_rows = current.unsqueeze(2).expand(B, count, N)
        score = arcs.gather(1, gather_rows)
        if clock is not None:
            ready, reached = clock.reach(arrival, current, gather_rows)
            score = torch.where(
                reached <= clock.late, score + clock.per_time * (reached - ready), torch.inf
            )
        nearest, following = torch.where(visited, torch.inf, score * bias).min(dim=2)
        if clock is not None:
            stuck = nearest.isinf()  # every client left is out of reach (or none is left)
            closing = torch.where(visited, torch.inf, clock.late * bias).argmin(dim=2)
            following = torch.where(stuck, closing, following)
            onward = reached.gather(2, following.unsqueeze(2)).squeeze(2)
            arrival = torch.where(stuck, clock.from_depot(following), onward)
        visited.scatter_(2, following.unsqueeze(2), True)  # once all are, a no-op
        left = (step < batch.n).view(B, 1)
        tours[:, :, step] = torch.where(left, following + 1, 0)
        current = torch.where(left, following, current)
    return tours


class _Clock:
    """Arrival times of the walks of :func:`_nearest_tours` (B, count, N over clients)."""

    def __init__(self, batch: Batch, count: int) -> None:
        B, N = batch.size, batch.nodes - 1
        self.travel = batch.travel[:, 1:, 1:]
        self.service = batch.service[:, 1:]
        self.early = batch.early[:, None, 1:].expand(B, count, N)
        self.late = batch.late[:, None, 1:].expand(B, count, N)
        self.depot = torch.maximum(batch.travel[:, None, 0, 1:], self.early)
        self.per_time = _initial_weights(batch)[:, 1].view(B, 1, 1)

    def from_depot(self, client: torch.Tensor) -> torch.Tensor:
        """Arrival at ``client`` (B, count) straight from the depot."""
        return self.depot.gather(2, client.unsqueeze(2)).squeeze(2)

    def reach(
        self, arrival: torch.Tensor, current: torch.Tensor, gather_rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """When each client could be reached from ``current`` and when service there can
        start (its window's opening, if later), both (B, count, N)."""
        leave = arrival + self.service.gather(1, current)
        ready = leave.unsqueeze(2) + self.travel.gather(1, gather_rows)
        return ready, torch.maximum(ready, self.early)


def run(
    batch: Batch,
    stop: Stop,
    seed: int,
    starts: list[list[list[int]]],
    settings: Settings,
) -> Outcome:
    """Evolve every instance of ``batch`` until ``stop``; ``starts[b]`` are flat sequences."""
    rng = CounterRng(seed, batch.device)
    B, P, C = batch.size, settings.population, settings.offspring
    weights = _initial_weights(batch)
    tolerance = _tolerances(batch)

    def out_of_time() -> bool:
        return stop.out_of_time or stop.interrupted

    calls = rng.calls

    def initial_tours(first: int, count: int) -> torch.Tensor:
        """Giant tours of individuals ``first`` to ``first + count - 1``, drawn with the
        numbers that building all of them at once would draw."""
        rng.replay_from(calls)
        if settings.start == "nearest":
            return _nearest_tours(batch, rng, count, settings.spread, first)
        return _random_tours(batch, rng, count, first)

    # As offspring are, the initial individuals are searched and the infeasible ones
    # repaired: at the initial penalties the search leaves nearly every individual
    # infeasible (R101, RC105 and X-n153: all 25), so a run cut short had only its
    # unsearched tours as solutions (R101 at 1 s: 25 % above the BKS; 1.4 % from one
    # repaired individual). Under a time limit the first few (at least the warm starts)
    # are built and go through both before the others are even built: a round costs
    # about in proportion to the individuals in it, and on X-n1001 building all 25 took
    # 0.56 s where 4 took 0.22 s, so under a short limit a few finished individuals come
    # sooner than many half-built ones (X-n1001 at 0.5 s ran for 0.6 to 1 s before).
    # Each individual is built and searched alone, so without a cut the parts change
    # nothing, and a run with no time limit builds and searches them all in one pass: a
    # round's cost on a GPU barely depends on its rows, and two passes took 78 rounds
    # where one takes 41 (128 CVRP100, P = 8).
    widest = max((len(flats) for flats in starts), default=0)
    cut = min(P, max(_SEARCHED_FIRST, widest)) if math.isfinite(stop.time_limit) else P
    strong = weights * settings.repair_factor
    best = torch.zeros((B, batch.length), dtype=torch.int64, device=batch.device)
    cost = torch.full((B,), torch.inf, dtype=torch.float64, device=batch.device)
    built_tours, built_seq = [], []
    first_build = 0.0
    for first, count in ((0, cut), (cut, P - cut)):
        # building the rest when it would end past the limit only delays the result:
        # unsearched, they rarely hold the best, and with no time left no generation runs
        if count == 0 or (first > 0 and stop.remaining < _REST_BUILD_RATIO * first_build):
            break
        started = time.perf_counter()
        part_tours = initial_tours(first, count)
        seq = split(batch, part_tours, weights)
        if first == 0:
            first_build = time.perf_counter() - started
            for b, flats in enumerate(starts):
                for i, flat in enumerate(flats[:P]):
                    seq[b, i] = torch.as_tensor(flat, dtype=torch.int64, device=batch.device)
        best, cost = _keep_best(_Scored(batch, seq, weights), best, cost, tolerance)
        seq = local_search(batch, seq, weights, out_of_time)
        broken = ~_feasible(_Scored(batch, seq, weights), tolerance)
        seq = local_search(batch, seq, strong, out_of_time, searched=broken)
        built_tours.append(part_tours)
        built_seq.append(seq)
    tours, seq = torch.cat(built_tours, dim=1), torch.cat(built_seq, dim=1)
    # cut after the first part, the population is short of P: the run ends with it
    complete = seq.shape[1] == P
    population = _Scored(batch, seq, weights)
    best, cost = _keep_best(population, best, cost, tolerance)
    # The first local search left every individual infeasible (or time cut it short):
    # the same tours split under the repair weights often give an incumbent. Only the
    # instances without one take it, so a batch still agrees with one by one. Cut after
    # the first few, the others' tours are built for it if theirs give none: X-n153
    # (seed 1, 0.5 s) had none from the first few.
    built = tours.shape[1]
    for first, count in ((0, built), (built, P - built)):
        missing = ~torch.isfinite(cost)
        if count == 0 or not bool(missing.any()):
            break
        part_tours = tours if first == 0 else initial_tours(first, count)
        strict = _Scored(batch, split(batch, part_tours, strong), weights)
        found, value = _keep_best(strict, best, cost, tolerance)
        best = torch.where(missing.unsqueeze(1), found, best)
        cost = torch.where(missing, value, cost)

    generations = 0
    while complete and not out_of_time():
        fitness = biased_fitness(
            population.cost(weights), broken_pairs(batch, population.seq), settings.elite,
            settings.close,
        )  # fmt: skip
        draws = rng.arange_uniform(C, 4)  # two tournaments of two
        picks = (draws * P).long().clamp(max=P - 1).expand(B, C, 4)
        scores = fitness.gather(1, picks.reshape(B, -1)).view(B, C, 4)
        first = torch.where(scores[:, :, 0] <= scores[:, :, 1], picks[:, :, 0], picks[:, :, 1])
        second = torch.where(scores[:, :, 2] <= scores[:, :, 3], picks[:, :, 2], picks[:, :, 3])
        tours = giant_tours(batch, population.seq)
        mothers = tours.gather(1, first.unsqueeze(2).expand(-1, -1, tours.shape[2]))
        fathers = tours.gather(1, second.unsqueeze(2).expand(-1, -1, tours.shape[2]))
        children = _cross(batch, population.seq, first, second, mothers, fathers, rng, settings)
        children = swap_mutation(
            children, batch.n, rng.arange_uniform(C, 3).expand(B, C, 3), settings.mutation
        )
        child_seq = local_search(batch, split(batch, children, weights), weights, out_of_time)
        offspring = _Scored(batch, child_seq, weights)
        feasible_load = offspring.excess <= tolerance[:, :1]
        feasible_time = offspring.warp <= tolerance[:, 1:]
        broken = ~(feasible_load & feasible_time)
        strong = weights * settings.repair_factor
        child_seq = local_search(batch, child_seq, strong, out_of_time, searched=broken)
        offspring = _Scored(batch, child_seq, weights)
        best, cost = _keep_best(offspring, best, cost, tolerance)
        share = torch.stack(
            [feasible_load.double().mean(dim=1), feasible_time.double().mean(dim=1)], dim=1
        )
        weights = adapt(weights, share, settings.target_feasible)

        merged = population.cat(offspring)
        keep = survivors(
            merged.cost(weights), broken_pairs(batch, merged.seq), P, settings.elite,
            settings.close,
        )  # fmt: skip
        population = merged.select(keep)
        generations += 1
        total = cost.sum().item() if bool(torch.isfinite(cost).all()) else None
        if total is not None:
            total = float(sum(c * s for c, s in zip(cost.tolist(), batch.scale, strict=True)))
        if stop(total):
            break
    return Outcome(best, cost, generations, weights)


def _cross(
    batch: Batch,
    seq: torch.Tensor,
    first: torch.Tensor,
    second: torch.Tensor,
    mothers: torch.Tensor,
    fathers: torch.Tensor,
    rng: CounterRng,
    settings: Settings,
) -> torch.Tensor:
    """Children of the chosen crossover; under ``mixed`` even children are OX's, odd ones
    keep whole routes (by child index, so a batch and one instance alone agree)."""
    B, C, _ = mothers.shape
    u = rng.arange_uniform(C, 2).expand(B, C, 2)
    if settings.crossover == "eax":
        father_seq = seq.gather(1, second.unsqueeze(2).expand(-1, -1, seq.shape[2]))
        mother_seq = seq.gather(1, first.unsqueeze(2).expand(-1, -1, seq.shape[2]))
        return edge_assembly(
            mother_seq, father_seq, batch.cost, batch.symmetric, batch.neighbours, batch.n,
            u[:, :, 0],
        )  # fmt: skip
    if settings.crossover == "ox":
        return order_crossover(mothers, fathers, batch.n, u)
    mother_seq = seq.gather(1, first.unsqueeze(2).expand(-1, -1, seq.shape[2]))
    routes = route_crossover(mother_seq, mothers, fathers, batch.n, u)
    if settings.crossover == "routes":
        return routes
    odd = (torch.arange(C, device=mothers.device) % 2 == 1).view(1, C, 1)
    return torch.where(odd, routes, order_crossover(mothers, fathers, batch.n, u))


def _tolerances(batch: Batch) -> torch.Tensor:
    """Excess load and warp still counted feasible: far inside the evaluator's tolerance."""
    capacity = torch.where(torch.isfinite(batch.capacity), batch.capacity, 1.0)
    load = 1e-9 * capacity.clamp(min=1.0)
    if batch.timed:
        finite = torch.where(torch.isfinite(batch.late), batch.late, 0.0)
        time = 1e-9 * finite.amax(dim=1).clamp(min=1.0)
    else:
        time = torch.zeros_like(load)
    return torch.stack([load, time], dim=1)


def _feasible(scored: _Scored, tolerance: torch.Tensor) -> torch.Tensor:
    return (scored.excess <= tolerance[:, :1]) & (scored.warp <= tolerance[:, 1:])


def _keep_best(
    scored: _Scored, best: torch.Tensor, cost: torch.Tensor, tolerance: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    distance = torch.where(_feasible(scored, tolerance), scored.distance, torch.inf)
    value, index = distance.min(dim=1)
    better = value < cost
    chosen = scored.seq.gather(1, index.view(-1, 1, 1).expand(-1, 1, scored.seq.shape[2]))
    best = torch.where(better.unsqueeze(1), chosen.squeeze(1), best)
    return best, torch.where(better, value, cost)


__all__ = ["Outcome", "Settings", "run"]
