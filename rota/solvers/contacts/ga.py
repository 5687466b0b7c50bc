"""``ga`` for contact scheduling: a random-key genetic algorithm over greedy's schedule builder.

Encoding
--------
An individual is a key and a mode per request, decoded into a feasible
schedule by :class:`~rota.solvers.contacts.decoder.Decoder`: requests in key
order, each with the longest track that fits, at its earliest start (mode 0,
greedy's rule) or its latest end (mode 1). A child is redecoded from its
parent's schedule, refitting only the requests its changes can reach, which
costs a fraction of a decoding from scratch (``stats["refits"]``).

Population
----------
Seeds, decoded from scratch: greedy's priority order (so the result is never
worse than ``greedy``), value per requested hour, longest request first,
earliest window end first, and each warm start (its tracks in order of
start, then the other requests by priority); copies of them with a few
requests promoted fill the population. The best feasible warm start is
returned if the search ends without a better schedule, so the result is
never worse than it either. A steady state follows: each child comes from
one operator, and replaces the worst individual when it is better (and no
duplicate of a schedule there), or its parent when it is as good and
different (moves across the plateaus oversubscribed weeks are full of); the
best individual is never replaced by a worse one. A small population (15)
did best: on DSN week 10 and the generated week of 5,000 requests, 1,036.8
and 13,758.9 hours at 60 s against 1,020.1 and 13,690.4 with 30.

Operators, chosen by adaptive probabilities
-------------------------------------------
- ``uniform``: uniform crossover of two tournament winners, biased to the
  better one (70 % of its genes, as biased random-key GAs do);
- ``segment``: two-point crossover on the requests sorted by time: the
  other parent's genes on a stretch of the horizon (time-local, so the
  child's schedule is the better parent's elsewhere);
- ``promote``: an unserved (or, for hours, shortened) request moved ahead of
  one of the requests whose tracks are in its way, or ahead of all of them;
- ``swap``: the keys of two requests whose options meet exchanged;
- ``flip``: a scheduled request's mode flipped.

Two parents alike leave nothing to cross; the better one is then promoted
instead. Each operator's probability is ``P_MIN`` plus a share of the rest
in proportion to its recent success (exponentially weighted: 1 for a child
better than its parent, 0.2 for one that only enters the population), so
the search leans on crossover while crossover pays and on mutation after.

Fuzzy fitness
-------------
With ``fuzzy=True`` a child is decoded only when
:class:`~rota.solvers.contacts.fuzzy.FuzzyFitness` calls it promising: its
estimate from decoded individuals within :data:`FUZZY_RADIUS` genes reaches
the population's median, or it has no such neighbour, and an exact copy of
a recently decoded individual is not decoded again; or, with probability
:data:`FUZZY_CONTROL`, whatever the estimate says (evolution control, as
surrogate-assisted algorithms keep their model fresh). The others are
dropped undecoded and counted in ``stats["estimated"]``. The children it
drops enter the population less often than those it decodes (DSN week 10:
16 % against 36 %) but improve on their parent as often or more: mostly
children of the weaker half. It saves 3 to 13 % of the decodes at no
measurable cost or gain in quality (``benchmarks/contacts/README.md``).

Stops and statistics
--------------------
An iteration of the stop is one generation of ``offspring`` children; the
time limit and Ctrl+C are also checked before each child. The same seed and
a stop on iterations give the same schedule. ``stats``: ``decodes``
(schedules built: seeds from scratch, children by redecoding), ``seeded``
(of them, before the first generation), ``estimated`` (children fuzzy
fitness dropped undecoded), ``refits`` (requests fitted by redecoding),
``decodes_per_s`` (over the time spent decoding), ``generations``,
``greedy_objective`` and ``operator_probabilities``. The status is
``FEASIBLE`` (nothing is proven) and there is no bound.

Why not torch
-------------
Each request's fit depends on every placement before it, so a decoding is a
chain of small steps, and redecoding refits a different few dozen requests
for each child, which no batch of children shares. One fit in Python costs
38 µs on DSN week 10 and 16 µs on the generated week of 5,000 requests,
while one torch operation on a 64-element CPU tensor costs 3 to 13 µs
(searchsorted 3, add 5, sort 9, a boolean mask 13; 2 cores of a shared Xeon),
and a fit needs several per option: a torch decoder loses before it starts.
The fuzzy distances are one numpy comparison per child.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rota.problems.contacts import ContactInstance, ContactSolution
from rota.solvers.base import (
    ALL_CRITERIA,
    Capabilities,
    Result,
    Status,
    best_feasible,
    finish,
    reconfigured,
)
from rota.solvers.contacts.decoder import Built, Decoder
from rota.solvers.contacts.encoding import Encoding, encode
from rota.solvers.contacts.fuzzy import FuzzyFitness
from rota.solvers.contacts.greedy import improves, priority_order
from rota.solvers.stopping import Stop

#: The operators, in the order of ``stats["operator_probabilities"]``.
OPERATORS = ("uniform", "segment", "promote", "swap", "flip")
#: Smallest probability of an operator, however it fares.
P_MIN = 0.05
#: Weight of the latest outcome in an operator's success rate.
LEARNING_RATE = 0.05
#: Share of genes a uniform crossover takes from the better parent.
BIAS = 0.7
#: Longest stretch of the time-sorted requests a segment crossover takes, as a share.
SEGMENT = 0.2
#: Gene differences at which fuzzy membership falls to zero, and individuals kept.
FUZZY_RADIUS, FUZZY_ARCHIVE = 12, 60
#: Chance that a child the estimate calls unpromising is decoded all the same, so that
#: the archive keeps up with the population: without it, once the latest decodes are all
#: below the bar, every child near them is estimated below it too and nothing new is ever
#: decoded (the generated week of 1,000 requests stalled after 184 decodes in 60 s).
FUZZY_CONTROL = 0.1
_OPTION_NAMES = ("population", "offspring", "fuzzy")


@dataclass(eq=False)
class Individual:
    """Keys and modes (as arrays, and as the decoder's lists) and their schedule.

    Individuals compare by identity: the population replaces them one by one.
    """

    keys: np.ndarray
    modes: np.ndarray
    key_list: list[int]
    built: Built
    #: requests without their longest track (computed when first asked for)
    waiting: list[int] | None = None
    #: requests with a track
    scheduled: list[int] | None = None

    @property
    def value(self) -> int | float:
        return self.built.value


class GAContacts:
    """Random-key genetic algorithm with redecoding and optional fuzzy fitness.

    Parameters
    ----------
    population
        Individuals kept (at least 2).
    offspring
        Children per generation, one iteration of the stop (at least 1).
    fuzzy
        Estimate similar children's fitness instead of decoding them all.
    """

    name = "ga"
    problem = "contacts"
    description = "Random-key GA over greedy's schedule builder, adaptive operators, fuzzy fitness"
    capabilities = Capabilities(warm_start=True, stopping=ALL_CRITERIA)

    def __init__(self, population: int = 15, offspring: int = 15, fuzzy: bool = False) -> None:
        for name, value, low in (("population", population, 2), ("offspring", offspring, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"ga option {name}={value!r} must be an integer >= {low}")
        if not isinstance(fuzzy, bool):
            raise ValueError(f"ga option fuzzy={fuzzy!r} must be True or False")
        self.population, self.offspring, self.fuzzy = population, offspring, fuzzy

    def configure(self, **options: Any) -> GAContacts:
        """A copy of this solver with ``options`` changed (a ValueError names a bad one)."""
        return reconfigured(self, _OPTION_NAMES, options)

    def available(self) -> bool:
        return True

    def supports(self, instance: ContactInstance) -> str | None:
        try:
            encode(instance)
        except ValueError as exc:
            return f"ga: {exc}"
        return None

    def solve(
        self,
        instance: ContactInstance,
        stop: Stop,
        seed: int,
        warm_start: tuple[ContactSolution, ...] = (),
    ) -> Result:
        enc = encode(instance)
        decoder = Decoder(instance, enc)
        search = _Search(instance, enc, decoder, self, np.random.default_rng(seed), stop)
        start = best_feasible(instance, warm_start)
        search.seed(warm_start)
        search.run()
        best = search.best
        solution = decoder.solution(best.built)
        objective = decoder.objective(best.value)
        stats = search.stats()
        if start is not None and improves(start[1].objective, objective):
            solution, objective = start[0], start[1].objective
            stats["solution_from"] = "warm start (the ga found nothing better)"
        # the decoder's own figure: the tests hold it to the evaluator's
        return finish(
            instance, solution, Status.FEASIBLE, solver=self.name, seed=seed, stop=stop,
            backend_objective=objective, stats=stats,
        )  # fmt: skip


class _Search:
    """One run of the genetic algorithm on one instance."""

    def __init__(
        self,
        instance: ContactInstance,
        enc: Encoding,
        decoder: Decoder,
        settings: GAContacts,
        rng: np.random.Generator,
        stop: Stop,
    ) -> None:
        self.instance, self.enc, self.decoder = instance, enc, decoder
        self.settings, self.rng, self.stop = settings, rng, stop
        self.n = n = instance.num_requests
        self.priority = priority_order(instance, enc)
        self.cap = [max((enc.max_length(o) for o in opts), default=0) for opts in enc.by_request]
        centre = [
            (min(enc.options[o].lo for o in opts) + max(enc.options[o].hi for o in opts)) / 2
            if opts else 0.0
            for opts in enc.by_request
        ]  # fmt: skip
        self.by_time = np.argsort(np.asarray(centre), kind="stable")
        self.population: list[Individual] = []
        self.best: Individual | None = None
        self.greedy_value: int | float = 0
        self.quality = np.ones(len(OPERATORS))
        self.fuzzy = FuzzyFitness(n, FUZZY_ARCHIVE, FUZZY_RADIUS) if settings.fuzzy else None
        self.decodes = self.estimated = self.refits = self.generations = self.seeded = 0
        self.decode_seconds = 0.0

    # -- genes -----------------------------------------------------------------------------

    def keys_of(self, order: list[int]) -> np.ndarray:
        """Keys that take the requests in ``order``: the rank times ``n``, plus the request."""
        keys = np.empty(self.n, dtype=np.int64)
        keys[np.asarray(order, dtype=np.int64)] = np.arange(self.n, dtype=np.int64) * self.n
        return keys + np.arange(self.n, dtype=np.int64)

    def rank(self, key: int) -> int:
        return key // self.n

    # -- population ------------------------------------------------------------------------

    def seed(self, warm_start: tuple[ContactSolution, ...]) -> None:
        """Decode the seed orders from scratch, then fill the population with their mutants."""
        instance, enc = self.instance, self.enc
        requests = instance.requests
        at = {r: k for k, r in enumerate(self.priority)}
        orders = [self.priority]
        orders.append(sorted(self.priority, key=lambda r: (-requests[r].value / max(
            requests[r].duration, 1e-9), at[r])))  # fmt: skip
        orders.append(sorted(self.priority, key=lambda r: (-requests[r].duration, at[r])))
        orders.append(sorted(self.priority, key=lambda r: (requests[r].window[1], at[r])))
        for start in warm_start:
            first = sorted(enc.placements(instance, start), key=lambda p: p[1])
            front = list(dict.fromkeys(enc.options[o].request for o, _, _ in first))
            chosen = set(front)
            orders.append(front + [r for r in self.priority if r not in chosen])
        zeros = np.zeros(self.n, dtype=np.int8)
        for k, order in enumerate(orders):
            if k > 0 and self.out_of_time():  # greedy's order is always decoded
                break
            keys = self.keys_of(order)
            individual = self.decode(keys, zeros.copy())
            if k == 0:
                self.greedy_value = individual.value
            self.admit(individual)
        while len(self.population) < self.settings.population and not self.out_of_time():
            parent = self.population[int(self.rng.integers(len(self.population)))]
            child = None
            for _ in range(1 + int(self.rng.integers(5))):
                made = self.promote(child or parent)
                if made is not None:
                    child = self.redecode(*made)
            if child is None:  # nothing to promote: every request is served in full
                break
            self.admit(child)
        self.seeded = self.decodes

    def admit(self, individual: Individual) -> None:
        self.population.append(individual)
        if self.best is None or individual.value > self.best.value:
            self.best = individual

    def decode(self, keys: np.ndarray, modes: np.ndarray) -> Individual:
        clock = self.stop.elapsed
        key_list = keys.tolist()
        built = self.decoder.decode(key_list, modes.tolist())
        return self.decoded(Individual(keys, modes, key_list, built), clock)

    def redecode(
        self, parent: Individual, keys: np.ndarray, modes: np.ndarray, changed: list[int]
    ) -> Individual:
        clock = self.stop.elapsed
        key_list = keys.tolist()
        built, fitted = self.decoder.redecode(
            parent.built, parent.key_list, key_list, modes.tolist(), changed
        )
        self.refits += fitted
        return self.decoded(Individual(keys, modes, key_list, built), clock)

    def decoded(self, individual: Individual, clock: float) -> Individual:
        self.decode_seconds += self.stop.elapsed - clock
        self.decodes += 1
        if self.fuzzy is not None:
            self.fuzzy.add(FuzzyFitness.pack(individual.keys, individual.modes), individual.value)
        return individual

    def out_of_time(self) -> bool:
        return self.stop.out_of_time or self.stop.interrupted

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> None:
        while not self.out_of_time():
            for _ in range(self.settings.offspring):
                if self.out_of_time():
                    return
                k, made = self.make(self.choose())
                if made is None:
                    self.credit(k, 0.0)
                    continue
                parent, keys, modes, _ = made
                if (
                    self.fuzzy is not None
                    and not self.fuzzy.promising(FuzzyFitness.pack(keys, modes), self.fuzzy_bar())
                    and self.rng.random() >= FUZZY_CONTROL
                ):
                    self.estimated += 1
                    self.credit(k, 0.0)
                    continue
                worst = min(self.population, key=lambda i: i.value)
                child = self.redecode(*made)
                self.credit(k, self.offer(child, parent, worst))
            self.generations += 1
            if self.stop(self.decoder.objective(self.best.value)):
                return

    def make(self, k: int) -> tuple[int, Any]:
        """A child by operator ``k``; two parents alike leave nothing to cross, and then
        the better one's child by ``promote``. Returns the operator used and the child."""
        if k >= 2:
            return k, (self.promote, self.swap, self.flip)[k - 2](self.tournament())
        first, second = self.tournament(), self.tournament()
        if second.value > first.value:
            first, second = second, first
        made = (self.uniform, self.segment)[k](first, second)
        if made is not None:
            return k, made
        return OPERATORS.index("promote"), self.promote(first)

    def fuzzy_bar(self) -> float:
        """What a child's estimate must reach to be decoded: the population's median."""
        return float(np.median([i.value for i in self.population]))

    def choose(self) -> int:
        share = self.quality / self.quality.sum()
        p = P_MIN + (1 - len(OPERATORS) * P_MIN) * share
        return int(self.rng.choice(len(OPERATORS), p=p / p.sum()))

    def credit(self, k: int, reward: float) -> None:
        self.quality[k] = max((1 - LEARNING_RATE) * self.quality[k] + LEARNING_RATE * reward, 1e-3)

    def tournament(self) -> Individual:
        a, b = self.rng.integers(len(self.population), size=2)
        first, second = self.population[int(a)], self.population[int(b)]
        return first if first.value >= second.value else second

    def offer(self, child: Individual, parent: Individual, worst: Individual) -> float:
        """Let ``child`` into the population if it earns it; its operator's reward."""
        if any(i.value == child.value and i.built.placed == child.built.placed
               for i in self.population):  # fmt: skip
            return 0.0
        if child.value > worst.value:
            self.population[self.population.index(worst)] = child
        elif child.value == parent.value and parent in self.population:
            self.population[self.population.index(parent)] = child
        else:
            return 0.0
        if child.value > self.best.value:
            self.best = child
        return 1.0 if child.value > parent.value else 0.2

    # -- operators: each gives (parent to redecode from, keys, modes, changed requests) ----

    def _cross(self, first: Individual, second: Individual, genes: np.ndarray):
        differ = genes[
            (first.keys[genes] != second.keys[genes]) | (first.modes[genes] != second.modes[genes])
        ]
        taken = differ[self.rng.random(len(differ)) >= BIAS] if len(differ) else differ
        if not len(taken):
            return None
        keys, modes = first.keys.copy(), first.modes.copy()
        keys[taken], modes[taken] = second.keys[taken], second.modes[taken]
        return first, keys, modes, taken.tolist()

    def uniform(self, first: Individual, second: Individual):
        return self._cross(first, second, np.arange(self.n))

    def segment(self, first: Individual, second: Individual):
        length = 1 + int(self.rng.integers(max(1, int(SEGMENT * self.n))))
        begin = int(self.rng.integers(max(1, self.n - length + 1)))
        return self._cross(first, second, self.by_time[begin : begin + length])

    def promote(self, parent: Individual):
        if parent.waiting is None:
            placed, cap, hours = parent.built.placed, self.cap, self.decoder.hours
            parent.waiting = [
                r for r in range(self.n)
                if cap[r] and (placed[r] is None or (hours and placed[r][2] < cap[r]))
            ]  # fmt: skip
        waiting = parent.waiting
        if not waiting:
            return None
        u = waiting[int(self.rng.integers(len(waiting)))]
        blockers = self.blockers(parent, u)
        if not blockers:
            return None
        keys, modes = parent.keys.copy(), parent.modes.copy()
        # ahead of every request in its way (it gets a track, others may lose theirs),
        # or of one of them (a smaller step), as often
        if self.rng.random() < 0.5:
            ahead = min(self.rank(parent.key_list[b]) for b in blockers)
        else:
            ahead = self.rank(parent.key_list[blockers[int(self.rng.integers(len(blockers)))]])
        keys[u] = (ahead - 1) * self.n + u
        if self.rng.random() < 0.3:  # and now and then placed from the other end
            modes[u] = 1 - modes[u]
        return parent, keys, modes, [u]

    def blockers(self, parent: Individual, u: int) -> list[int]:
        """Requests with a track in the way of one of ``u``'s options, in request order."""
        decoder, timelines = self.decoder, parent.built.timelines
        su, td, ms = decoder.setup[u], decoder.teardown[u], decoder.switch
        found: set[int] = set()
        for _, lo, hi, antennas, _ in decoder.options[0][u]:
            for t, before, after in ((decoder.craft[u], ms, ms), *((a, td, su) for a in antennas)):
                for b0, b1, _, owner in timelines[t]:
                    if b0 - before < hi and b1 + after > lo:
                        found.add(owner)
        found.discard(u)
        return sorted(found)

    def scheduled(self, parent: Individual) -> list[int]:
        if parent.scheduled is None:
            parent.scheduled = [r for r, p in enumerate(parent.built.placed) if p is not None]
        return parent.scheduled

    def swap(self, parent: Individual):
        placed = self.scheduled(parent)
        if not placed:
            return None
        r = placed[int(self.rng.integers(len(placed)))]
        near = sorted(
            {q for t, b0, b1 in self.decoder.busy(r, parent.built.placed[r])
             for q in self.decoder.touched(t, b0, b1)} - {r}
        )  # fmt: skip
        if not near:
            return None
        s = near[int(self.rng.integers(len(near)))]
        keys, modes = parent.keys.copy(), parent.modes.copy()
        keys[r] = self.rank(parent.key_list[s]) * self.n + r
        keys[s] = self.rank(parent.key_list[r]) * self.n + s
        return parent, keys, modes, [r, s]

    def flip(self, parent: Individual):
        placed = self.scheduled(parent)
        if not placed:
            return None
        r = placed[int(self.rng.integers(len(placed)))]
        modes = parent.modes.copy()
        modes[r] = 1 - modes[r]
        return parent, parent.keys.copy(), modes, [r]

    def stats(self) -> dict[str, Any]:
        share = self.quality / self.quality.sum()
        p = P_MIN + (1 - len(OPERATORS) * P_MIN) * share
        return {
            "decodes": self.decodes,
            "seeded": self.seeded,
            "estimated": self.estimated,
            "refits": self.refits,
            "decodes_per_s": round(self.decodes / self.decode_seconds, 1)
            if self.decode_seconds > 0 else None,
            "generations": self.generations,
            "population": len(self.population),
            "fuzzy": self.fuzzy is not None,
            "greedy_objective": self.decoder.objective(self.greedy_value),
            "operator_probabilities": dict(zip(OPERATORS, np.round(p / p.sum(), 3).tolist(),
                                               strict=True)),
        }  # fmt: skip


__all__ = ["OPERATORS", "GAContacts"]
