"""A batched contact-scheduling environment in rl4co's style: the schedule, request by request.

An action names the next request to schedule; the environment gives it the
longest track that still fits among its options, at the earliest start:
greedy's rule, through the very fit the contacts ``ga`` decodes with
(:class:`~rota.solvers.contacts.decoder.Decoder`, on the integer encoding
of :mod:`~rota.solvers.contacts.encoding`). Taking the requests in greedy's
priority order therefore rebuilds greedy's schedule, and any order builds a
feasible one.

What runs where, and why
    Each placement depends on every placement before it, through a handful
    of busy intervals per antenna (see the ``ga``'s "Why not torch": one fit
    costs tens of microseconds in Python, less than a few torch operations on
    small tensors). So the exact placement, and the refit of the requests a
    new track can reach (the decoder's reach lists: a few dozen on a DSN
    week), run per rollout in Python (:class:`Rollout`); the rollouts live in
    the environment, and the TensorDict names each row's by ``rollout``.
    Everything the policy sees is a tensor over the whole batch: static
    features of requests and antennas, which requests share an antenna or a
    spacecraft at overlapping times, and per step each request's remaining
    fit and each antenna's busy fraction.

Batching
    Instances of any sizes share a batch, padded to its largest request and
    antenna counts (``request_valid``, ``antenna_valid``); padded requests
    are never allowed.

Observation (``B`` rows, ``N`` requests, ``A`` antennas)
    static: ``request_features`` ``(B, N, F)``, ``antenna_features``
    ``(B, A, G)`` (names in :data:`REQUEST_FEATURES`, :data:`ANTENNA_FEATURES`),
    ``incidence`` ``(B, N, A)`` (the request can use the antenna),
    ``competes`` ``(B, N, N)`` (two requests share an antenna or a spacecraft
    over overlapping spans), ``duration`` ``(B, N)`` in scaled units;
    dynamic: ``fit`` ``(B, N)`` (the longest track the request can still
    get over its requested duration, 0 once taken or when nothing fits),
    ``fit_left`` (that over what it could get at the start), ``busy``
    ``(B, A)`` (fraction of the horizon each antenna is busy, setup and
    teardown included), ``action_mask`` (``fit > 0``), ``objective`` (the
    schedule so far, in the instance's units, float64), ``i``.
Constraints
    those of the family, all kept by the placement rule: each request at
    most once, inside a view period of an allowed resource and its window,
    antennas (setup and teardown) and spacecraft (mode switch) one track at
    a time, maintenance excluded by the encoding.
Finish condition
    no request fits anywhere. Rows done early repeat a no-op until the batch is.
Reward
    the evaluator's objective of the schedule (hours, or value; maximised),
    never normalised.
"""

from __future__ import annotations

import math
from bisect import insort
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from rl4co.envs.common.base import RL4COEnvBase
from rl4co.envs.common.utils import Generator
from tensordict import TensorDict
from torchrl.data import Bounded, Composite, Unbounded

from rota.problems.contacts import (
    ContactInstance,
    ContactSolution,
    Request,
    Resource,
)
from rota.solvers.contacts.decoder import Decoder, Placement
from rota.solvers.contacts.encoding import Encoding, encode

#: Per-request static features, in the order of ``request_features``.
REQUEST_FEATURES = (
    "log1p(hours requested)", "minimum / requested", "log1p(setup + teardown hours)",
    "log1p(window / requested)", "log1p(option time / requested)", "log1p(options)",
    "log1p(resources)", "longest possible track / requested", "value / largest value",
    "value per hour / largest", "log1p(demand on its least loaded antenna)",
    "log1p(mean demand on its antennas)", "log1p(demand on its spacecraft)",
    "objective is value",
)  # fmt: skip
#: Per-antenna static features: demand (hours of the requests that can use it over the
#: horizon), the share of requests that can use it, the share of the horizon in maintenance.
ANTENNA_FEATURES = ("log1p(demand)", "requests using it", "maintenance")


@dataclass
class Prepared:
    """An instance with what every rollout of it shares: its encoding, decoder and features."""

    instance: ContactInstance
    enc: Encoding
    decoder: Decoder
    requests: np.ndarray  # (n, F)
    antennas: np.ndarray  # (A, G)
    incidence: np.ndarray  # (n, A) bool
    competes: np.ndarray  # (n, n) bool
    initial: list[Placement | None]  # each request's fit in an empty schedule
    horizon: int  # units from the first window start to the last window end


def prepare(instance: ContactInstance) -> Prepared:
    """Encode ``instance`` and compute its static features (see the module docstring)."""
    enc = encode(instance)
    decoder = Decoder(instance, enc)
    n, num_antennas = instance.num_requests, len(instance.antennas)
    empty: list[list] = [[] for _ in range(decoder.num_timelines)]
    initial = [decoder.fit(empty, r, 0, math.inf) for r in range(n)]
    starts = [min((enc.options[o].lo for o in opts), default=0) for opts in enc.by_request]
    ends = [max((enc.options[o].hi for o in opts), default=0) for opts in enc.by_request]
    horizon = max(max(ends, default=1), 1)
    incidence = np.zeros((n, num_antennas), dtype=bool)
    for o in enc.options:
        incidence[o.request, list(o.antennas)] = True
    duration = np.asarray(enc.duration, dtype=float).clip(min=1)
    demand = (incidence * duration[:, None]).sum(0) / horizon  # antenna-horizons requested
    crafts = np.asarray(enc.craft)
    craft_demand = np.bincount(crafts, weights=duration) / horizon
    share = incidence.sum(0) / n
    maintenance = np.asarray(
        [sum(b - a for a, b in antenna.maintenance) * enc.scale for antenna in instance.antennas]
    )
    values = np.asarray([r.value for r in instance.requests], dtype=float)
    per_hour = values / (duration / enc.scale / 3600)
    rows = []
    for r, request in enumerate(instance.requests):
        opts = enc.by_request[r]
        room = sum(enc.options[o].hi - enc.options[o].lo for o in opts)
        mine = demand[incidence[r]]
        window = (request.window[1] - request.window[0]) * enc.scale
        rows.append([
            math.log1p(duration[r] / enc.scale / 3600),
            enc.min_duration[r] / duration[r],
            math.log1p((enc.setup[r] + enc.teardown[r]) / enc.scale / 3600),
            math.log1p(window / duration[r]),
            math.log1p(room / duration[r]),
            math.log1p(len(opts)),
            math.log1p(len(request.resources)),
            (initial[r][2] if initial[r] is not None else 0) / duration[r],
            request.value / max(values.max(), 1e-12),
            per_hour[r] / max(per_hour.max(), 1e-12),
            math.log1p(mine.min()) if mine.size else 0.0,
            math.log1p(mine.mean()) if mine.size else 0.0,
            math.log1p(craft_demand[crafts[r]]),
            float(instance.objective == "value"),
        ])  # fmt: skip
    antennas = np.stack([np.log1p(demand), share, maintenance / horizon], axis=1)
    # spans a request's tracks can reach on its antennas, setup and teardown included
    lo = np.asarray(starts) - np.asarray(enc.setup)
    hi = np.asarray(ends) + np.asarray(enc.teardown)
    overlap = (lo[:, None] < hi[None, :]) & (lo[None, :] < hi[:, None])
    shared = (incidence.astype(np.int32) @ incidence.T.astype(np.int32)) > 0
    competes = overlap & (shared | (crafts[:, None] == crafts[None, :]))
    np.fill_diagonal(competes, True)
    return Prepared(
        instance, enc, decoder, np.asarray(rows, dtype=np.float32),
        antennas.astype(np.float32), incidence, competes, initial, horizon,
    )  # fmt: skip


class InstanceTable:
    """Prepared instances by id: the TensorDict carries ids, the table what they stand for.

    Training draws fresh instances every batch, so the table forgets the
    oldest beyond ``capacity`` (pinned ones, the fixed validation sets, stay).
    """

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._items: OrderedDict[int, Prepared] = OrderedDict()
        self._pinned: dict[int, Prepared] = {}
        self._next = 0

    def add(self, prepared: Prepared, pin: bool = False) -> int:
        key = self._next
        self._next += 1
        if pin:
            self._pinned[key] = prepared
            return key
        self._items[key] = prepared
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return key

    def __getitem__(self, key: int) -> Prepared:
        found = self._pinned.get(key) or self._items.get(key)
        if found is None:
            raise KeyError(f"instance {key} is no longer in the table (capacity {self.capacity})")
        return found


class Rollout:
    """One schedule being built: the timelines, the placements and every request's fit."""

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        decoder = prepared.decoder
        self.timelines: list[list] = [[] for _ in range(decoder.num_timelines)]
        self.fits: list[Placement | None] = list(prepared.initial)
        self.placed: list[tuple[int, Placement]] = []
        self.fit = np.asarray([p[2] if p else 0 for p in self.fits], dtype=np.float64)
        self.busy = np.zeros(len(prepared.instance.antennas))
        self.value: int | float = 0

    def take(self, r: int) -> None:
        """Place request ``r`` at its fit, then refit the requests the new track is in the way of.

        Adding busy time never lengthens a free stretch, so a request whose
        fit is still free keeps it (the decoder's redecoding argument).
        """
        decoder = self.prepared.decoder
        placement = self.fits[r]
        if placement is None:
            raise ValueError(f"request {r} fits nowhere or is already scheduled")
        step = len(self.placed)
        intervals = decoder.busy(r, placement)
        for t, b0, b1 in intervals:
            insort(self.timelines[t], (b0, b1, step, r))
            if t < decoder.antennas:
                self.busy[t] += b1 - b0
        self.placed.append((r, placement))
        self.value += decoder.gain(r, placement)
        self.fits[r] = None
        self.fit[r] = 0
        seen = {r}
        for t, b0, b1 in intervals:
            for q in decoder.touched(t, b0, b1):
                if q in seen:
                    continue
                seen.add(q)
                old = self.fits[q]
                if old is None or decoder.free(self.timelines, q, old, math.inf):
                    continue
                new = decoder.fit(self.timelines, q, 0, math.inf)
                self.fits[q] = new
                self.fit[q] = new[2] if new is not None else 0

    @property
    def objective(self) -> float:
        return self.prepared.decoder.objective(self.value)

    def solution(self) -> ContactSolution:
        enc = self.prepared.enc
        return ContactSolution(tuple(enc.track(*p) for _, p in self.placed))


def _pad(arrays: Sequence[np.ndarray], shape: tuple[int, ...], dtype) -> np.ndarray:
    out = np.zeros((len(arrays), *shape), dtype=dtype)
    for k, a in enumerate(arrays):
        out[(k, *(slice(0, s) for s in a.shape))] = a
    return out


def to_tensordict(
    instances: Sequence[ContactInstance | Prepared],
    table: InstanceTable,
    device: str | torch.device = "cpu",
    pin: bool = False,
) -> TensorDict:
    """A padded batch of instances, registered in ``table`` (``pin`` keeps them there)."""
    if not instances:
        raise ValueError("no instances to batch")
    prepared = [p if isinstance(p, Prepared) else prepare(p) for p in instances]
    n = max(p.instance.num_requests for p in prepared)
    a = max(len(p.instance.antennas) for p in prepared)

    def tensor(values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(values, device=device)

    return TensorDict(
        {
            "instance": tensor(np.asarray([table.add(p, pin) for p in prepared])),
            "request_features": tensor(
                _pad([p.requests for p in prepared], (n, len(REQUEST_FEATURES)), np.float32)
            ),
            "antenna_features": tensor(
                _pad([p.antennas for p in prepared], (a, len(ANTENNA_FEATURES)), np.float32)
            ),
            "incidence": tensor(_pad([p.incidence for p in prepared], (n, a), bool)),
            "competes": tensor(_pad([p.competes for p in prepared], (n, n), bool)),
            "duration": tensor(
                _pad([np.asarray(p.enc.duration, float) for p in prepared], (n,), np.float64)
            ),
            "request_valid": tensor(
                _pad([np.ones(p.instance.num_requests, bool) for p in prepared], (n,), bool)
            ),
            "antenna_valid": tensor(
                _pad([np.ones(len(p.instance.antennas), bool) for p in prepared], (a,), bool)
            ),
            "horizon": tensor(np.asarray([p.horizon for p in prepared], dtype=np.float64)),
        },
        batch_size=[len(prepared)],
        device=device,
    )


def _shifted(request: Request, shift: float) -> Request:
    def move(span: tuple[float, float]) -> tuple[float, float]:
        return span[0] + shift, span[1] + shift

    return Request(
        request.id, request.mission, request.duration, request.min_duration,
        move(request.window),
        tuple(Resource(r.antennas, tuple(move(v) for v in r.view_periods))
              for r in request.resources),
        request.setup, request.teardown, request.value, request.spacecraft,
    )  # fmt: skip


def week_slice(
    week: ContactInstance, rng: np.random.Generator, requests: int, days: tuple[float, float]
) -> ContactInstance:
    """A perturbed piece of a real week: the requests whose window centre falls in a random
    stretch of ``days`` (at most ``requests`` of them, drawn at random), shifted in time.

    The antennas keep their maintenance, shifted with the requests.
    """
    from rota.problems.contacts import Antenna

    first = min(r.window[0] for r in week.requests)
    last = max(r.window[1] for r in week.requests)
    length = min(rng.uniform(*days) * 86_400, last - first)
    begin = first + rng.uniform(0, last - first - length)
    centre = np.asarray([(r.window[0] + r.window[1]) / 2 for r in week.requests])
    inside = np.flatnonzero((centre >= begin) & (centre < begin + length))
    if inside.size == 0:
        inside = np.asarray([int(np.argmin(np.abs(centre - begin)))])
    if inside.size > requests:
        inside = np.sort(rng.choice(inside, size=requests, replace=False))
    shift = float(rng.integers(0, 86_400))
    antennas = tuple(
        Antenna(a.name, a.station, tuple((m0 + shift, m1 + shift) for m0, m1 in a.maintenance))
        for a in week.antennas
    )
    return ContactInstance(
        antennas, tuple(_shifted(week.requests[k], shift) for k in inside.tolist()),
        objective=week.objective, mode_switch=week.mode_switch,
        name=f"{week.name}-slice", metadata={"slice_of": week.name},
    )  # fmt: skip


def _subset(instance: ContactInstance, keep: Sequence[int]) -> ContactInstance:
    return ContactInstance(
        instance.antennas, tuple(instance.requests[k] for k in keep),
        objective=instance.objective, mode_switch=instance.mode_switch,
        name=f"{instance.name}-subset", metadata=dict(instance.metadata),
    )  # fmt: skip


class ContactsGenerator(Generator):
    """Training instances: generated ones (:mod:`rota.data.contacts`, three times the
    requests over three days, a third of them kept at random: a week's congestion with
    its stations) and perturbed slices of the training weeks (:func:`week_slice`), half
    and half by default; each instance gets a fresh seed from the generator's stream.

    Parameters
    ----------
    weeks
        Real weeks to slice (the training weeks only: the held-out week must stay unseen).
    requests
        Largest number of requests of an instance; generated ones draw 60 % to 100 % of it.
    generated
        Share of generated instances (1 when there are no weeks).
    days
        Range of the length of a week slice, in days.
    seed
        Seed of the stream of instance seeds.
    """

    def __init__(
        self,
        weeks: Sequence[ContactInstance] = (),
        requests: int = 100,
        generated: float = 0.5,
        days: tuple[float, float] = (2.0, 3.5),
        seed: int = 0,
    ) -> None:
        from rota.data.contacts import MAX_REQUESTS, MIN_REQUESTS

        if not MIN_REQUESTS <= requests <= MAX_REQUESTS:
            raise ValueError(f"requests is {requests}, expected {MIN_REQUESTS} to {MAX_REQUESTS}")
        if not 0 <= generated <= 1:
            raise ValueError(f"generated is {generated!r}, expected a share from 0 to 1")
        self.weeks = list(weeks)
        self.requests, self.days = requests, days
        self.generated = generated if self.weeks else 1.0
        self.table = InstanceTable()
        self._rng = np.random.default_rng(seed)

    def __deepcopy__(self, memo):
        # Lightning deep-copies hyperparameters: the weeks and the table are shared data
        return self

    def draw(self, count: int) -> list[ContactInstance]:
        from rota.data.contacts import MAX_REQUESTS, MIN_REQUESTS, generate_contacts

        made = []
        for _ in range(count):
            if self._rng.random() < self.generated:
                size = int(self._rng.integers(max(MIN_REQUESTS, int(0.6 * self.requests)),
                                              self.requests + 1))  # fmt: skip
                # three times the requests over three days, a third of them kept: the
                # generator's congestion of a week, with its stations and antennas
                week = generate_contacts(
                    min(3 * size, MAX_REQUESTS), seed=int(self._rng.integers(2**31)), days=3
                )
                keep = np.sort(self._rng.choice(week.num_requests, size, replace=False))
                made.append(_subset(week, keep.tolist()))
            else:
                week = self.weeks[int(self._rng.integers(len(self.weeks)))]
                made.append(week_slice(week, self._rng, self.requests, self.days))
        return made

    def _generate(self, batch_size) -> TensorDict:
        return to_tensordict(self.draw(int(np.prod(batch_size))), self.table)


class ContactsEnv(RL4COEnvBase):
    """Contact schedules built request by request (see the module docstring)."""

    name = "rota_contacts"

    def __init__(
        self,
        generator: ContactsGenerator | None = None,
        fixed_sets: dict[str, TensorDict] | None = None,
        **kwargs,
    ) -> None:
        kwargs.setdefault("check_solution", False)
        super().__init__(**kwargs)
        self.generator = generator if generator is not None else ContactsGenerator()
        #: Phases (``val``, ``test``) served from a fixed batch instead of the generator.
        self.fixed_sets = dict(fixed_sets or {})
        self.rollouts: list[Rollout] = []
        self._make_spec()

    @property
    def table(self) -> InstanceTable:
        return self.generator.table

    def load(
        self, instances: Sequence[ContactInstance | Prepared], device="cpu", pin: bool = False
    ) -> TensorDict:
        """A batch of instances for this environment (registered in its table)."""
        return to_tensordict(instances, self.table, device, pin)

    def dataset(self, batch_size=None, phase="train", filename=None):
        if phase in self.fixed_sets:
            from rl4co.data.dataset import TensorDictDataset

            return TensorDictDataset(self.fixed_sets[phase])
        return super().dataset(batch_size, phase=phase, filename=filename)

    # -- reset and step ---------------------------------------------------------
    def _reset(self, td: TensorDict | None = None, batch_size=None) -> TensorDict:
        """Fresh rollouts, one per row (rows of one instance each get their own)."""
        self.rollouts = [Rollout(self.table[int(k)]) for k in td["instance"].tolist()]
        state = td.clone()
        state.set("rollout", torch.arange(len(self.rollouts), device=td.device))
        state.set("i", torch.zeros((*td.batch_size, 1), dtype=torch.int64, device=td.device))
        self._observe(state)
        return state

    def _step(self, td: TensorDict) -> TensorDict:
        actions = td["action"].tolist()
        done = td["done"].squeeze(-1).tolist()
        for row, k in enumerate(td["rollout"].tolist()):
            if not done[row]:
                self.rollouts[k].take(actions[row])
        td.set("i", td["i"] + 1)
        self._observe(td)
        return td

    def _observe(self, td: TensorDict) -> None:
        rollouts = [self.rollouts[k] for k in td["rollout"].tolist()]
        n, a = td["duration"].shape[-1], td["antenna_features"].shape[-2]
        fit = _pad([r.fit for r in rollouts], (n,), np.float64)
        initial = _pad(
            [np.asarray([p[2] if p else 0 for p in r.prepared.initial], float) for r in rollouts],
            (n,), np.float64,
        )  # fmt: skip
        busy = _pad([r.busy for r in rollouts], (a,), np.float64)
        device = td.device
        fit_t = torch.as_tensor(fit, device=device)
        mask = fit_t > 0
        done = ~mask.any(-1, keepdim=True)
        td.update(
            {
                "fit": (fit_t / td["duration"].clamp(min=1)).float(),
                "fit_left": torch.as_tensor(
                    np.divide(fit, np.maximum(initial, 1)), device=device
                ).float(),  # fmt: skip
                "busy": (torch.as_tensor(busy, device=device) / td["horizon"][:, None]).float(),
                "action_mask": mask,
                "done": done,
                "objective": torch.as_tensor(
                    [r.objective for r in rollouts], dtype=torch.float64, device=device
                ),
                "reward": torch.zeros((*td.batch_size, 1), device=device),
            }
        )

    # -- reward, solutions and checks ----------------------------------------------
    def _get_reward(self, td: TensorDict, actions: torch.Tensor) -> torch.Tensor:
        """The objective of each row's schedule (float32; ``td["objective"]`` is exact)."""
        return td["objective"].float()

    def check_solution_validity(self, td: TensorDict, actions: torch.Tensor) -> None:
        if not td["done"].all():
            raise AssertionError("a schedule is scored before every row is done")

    def finish_in_greedy_order(self, td: TensorDict) -> TensorDict:
        """Every row's remaining requests taken in greedy's priority order, at once.

        What a decoding cut short by its time limit does with what it has not
        chosen yet: the schedule is then as complete as greedy would make it.
        """
        from rota.solvers.contacts.greedy import priority_order

        done = td["done"].squeeze(-1).tolist()
        for row, k in enumerate(td["rollout"].tolist()):
            if done[row]:
                continue
            rollout = self.rollouts[k]
            prepared = rollout.prepared
            for r in priority_order(prepared.instance, prepared.enc):
                if rollout.fits[r] is not None:
                    rollout.take(r)
        self._observe(td)
        return td

    def solutions(self, td: TensorDict) -> list[ContactSolution]:
        """Each row's schedule so far."""
        return [self.rollouts[k].solution() for k in td["rollout"].tolist()]

    def _make_spec(self) -> None:
        self.observation_spec = Composite(shape=())
        self.action_spec = Bounded(shape=(1,), dtype=torch.int64, low=0, high=2**31 - 1)
        self.reward_spec = Unbounded(shape=(1,))
        self.done_spec = Unbounded(shape=(1,), dtype=torch.bool)


def replay(instance: ContactInstance | Prepared, actions: Sequence[int]) -> Rollout:
    """The rollout of ``actions`` (request indices); a request that fits nowhere any more
    is passed over, as greedy passes it over, so any order of requests replays, and what
    follows the end (a padded batch's done rows keep acting) is ignored."""
    rollout = Rollout(instance if isinstance(instance, Prepared) else prepare(instance))
    for r in actions:
        if not rollout.fit.any():
            break
        if rollout.fits[int(r)] is not None:
            rollout.take(int(r))
    return rollout


def to_solution(instance: ContactInstance | Prepared, actions: Sequence[int]) -> ContactSolution:
    """The schedule an action sequence builds (the requests in the order taken)."""
    return replay(instance, actions).solution()


__all__ = [
    "ANTENNA_FEATURES", "REQUEST_FEATURES", "ContactsEnv", "ContactsGenerator", "InstanceTable",
    "Prepared", "Rollout", "prepare", "replay", "to_solution", "to_tensordict", "week_slice",
]  # fmt: skip
