"""Batched routing environments in rl4co's style: ATSP, ACVRP, ACVRPTW and CVRP.

One environment class, :class:`RoutingEnv`, steps a whole batch of instances
of one size on the CPU or a GPU; the four problems are its subclasses, which
differ only in the constraints they switch on and the data their generator
draws. rl4co 0.7.0's own CVRP/CVRPTW environments recompute Euclidean
distances from coordinates, so they cannot hold road matrices: these read the
distance and duration matrices of :class:`~rota.problems.routing.RoutingInstance`
directly.

Observation (the TensorDict of a batch of ``B`` instances of ``N`` locations,
location 0 the depot or the tour's start)
    ``distance`` ``(B, N, N)`` and ``duration`` ``(B, N, N)`` in the
    instance's own units; ``locs`` ``(B, N, 2)`` positions scaled into the
    unit square (model input only); ``demand`` ``(B, N)`` and ``capacity``
    ``(B,)``; ``time_windows`` ``(B, N, 2)`` and ``service_time`` ``(B, N)``;
    ``unit_cost`` ``(B,)``; and the state: ``current_node``, ``used_capacity``,
    ``current_time``, ``visited`` and ``action_mask`` ``(B, N)``.
Constraints
    every client is visited exactly once; a route starts and ends at the
    depot and never returns empty; the load of a route fits the capacity
    (CVRP family); service starts no later than the client's window closes and
    the vehicle can still reach the depot before it closes (ACVRPTW); a TSP
    tour never returns to its start before the end.
Finish condition
    every client has been visited; finished instances of a batch that is
    still running stay at the depot (action 0, cost 0).
Reward
    minus the evaluator's objective of the decoded solution, in the
    instance's own units: the unit distance cost times the distance of the
    closed routes. Models normalise their inputs themselves; the reward is
    never normalised.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from rl4co.envs.common.base import RL4COEnvBase
from rl4co.envs.common.utils import Generator
from tensordict import TensorDict
from torchrl.data import Bounded, Composite, Unbounded

from rota.problems.routing import RoutingInstance, RoutingSolution
from rota.solvers.routing import RoutingCapabilities, check_capabilities

#: Slack on time comparisons, as the evaluator's.
TIME_TOLERANCE = 1e-6

#: What the neural environments model; the rest is refused by name.
ENV_CAPABILITIES = RoutingCapabilities(time_windows=True)

PROBLEMS = ("atsp", "acvrp", "acvrptw", "cvrp")

#: Training instances drawn from one varied city before the next is built (building
#: one of 404 points takes about 0.07 s: the two a step of 64 instances uses cost about
#: 5 % of that step at 100 nodes on one CPU core).
INSTANCES_PER_VARIED_CITY = 32
#: Points of a varied city per location of an instance: instances of one city
#: share some points, never all.
VARIED_CITY_POINTS_PER_LOCATION = 4


def env_problem(instance: RoutingInstance) -> str:
    """The environment an instance belongs to: ``atsp``, ``acvrp``, ``acvrptw`` or ``cvrp``."""
    if instance.is_tsp:
        return "atsp"
    if instance.has_time_windows:
        return "acvrptw"
    return "cvrp" if instance.is_symmetric and instance.coords is not None else "acvrp"


def unsupported(instance: RoutingInstance, who: str = "the neural environments") -> str | None:
    """Why the environments cannot hold ``instance``, or ``None``; ``who`` names the refuser."""
    reason = check_capabilities(who, ENV_CAPABILITIES, instance)
    if reason is not None:
        return reason
    if instance.is_tsp:
        return None
    if instance.demand is None or not instance.is_capacitated:
        return f"{who} needs capacitated vehicles with demands"
    return None


def _unit_square(instance: RoutingInstance) -> np.ndarray:
    """Positions in ``[0, 1]^2`` keeping the aspect ratio; from the matrix when none are given.

    Longitude and latitude are projected first (equirectangular about the mean
    latitude) so that a kilometre is as long east-west as north-south.
    """
    coords = instance.coords
    if coords is None:
        coords = _mds(instance.distance)
    else:
        coords = np.asarray(coords, dtype=float).copy()
        if instance.metadata.get("coords") == "lon,lat":
            coords[:, 0] *= np.cos(np.radians(coords[:, 1].mean()))
    coords = coords - coords.min(axis=0)
    extent = float(coords.max()) or 1.0
    return coords / extent


def _mds(distance: np.ndarray) -> np.ndarray:
    """Classical multidimensional scaling of the symmetrised matrix into the plane."""
    sym = (distance + distance.T) / 2.0
    n = sym.shape[0]
    centring = np.eye(n) - np.full((n, n), 1.0 / n)
    gram = -0.5 * centring @ (sym**2) @ centring
    values, vectors = np.linalg.eigh(gram)
    top = np.argsort(values)[::-1][:2]
    return vectors[:, top] * np.sqrt(np.maximum(values[top], 0.0))


def to_tensordict(
    instances: Sequence[RoutingInstance], device: str | torch.device = "cpu"
) -> TensorDict:
    """A batch TensorDict of instances of one size (see the module docstring for the keys).

    Raises
    ------
    ValueError
        When the instances differ in size or one cannot be held (the reason named).
    """
    if not instances:
        raise ValueError("no instances to batch")
    sizes = {inst.num_locations for inst in instances}
    if len(sizes) > 1:
        raise ValueError(f"a batch holds instances of one size, got sizes {sorted(sizes)}")
    for inst in instances:
        reason = unsupported(inst)
        if reason is not None:
            raise ValueError(f"{inst.name}: {reason}")
    n = sizes.pop()

    def stack(values) -> torch.Tensor:
        return torch.as_tensor(np.stack(values), dtype=torch.float32, device=device)

    capacity, demand, windows, service = [], [], [], []
    for inst in instances:
        vehicle = inst.vehicle_types[0]
        if inst.is_tsp:
            capacity.append(np.inf)
            demand.append(np.zeros(n))
        else:
            capacity.append(float(vehicle.capacity))
            demand.append(np.asarray(inst.demand, dtype=float).reshape(n))
        if inst.time_windows is None:
            windows.append(np.tile([0.0, np.inf], (n, 1)))
        else:
            windows.append(np.asarray(inst.time_windows, dtype=float))
        service.append(
            np.zeros(n) if inst.service_time is None else np.asarray(inst.service_time, float)
        )
    return TensorDict(
        {
            "distance": stack([inst.distance for inst in instances]),
            "duration": stack([inst.travel_time for inst in instances]),
            "locs": stack([_unit_square(inst) for inst in instances]),
            "demand": stack(demand),
            "capacity": torch.as_tensor(capacity, dtype=torch.float32, device=device),
            "time_windows": stack(windows),
            "service_time": stack(service),
            "unit_cost": torch.as_tensor(
                [inst.vehicle_types[0].unit_distance_cost for inst in instances],
                dtype=torch.float32,
                device=device,
            ),
        },
        batch_size=[len(instances)],
        device=device,
    )


def to_solution(actions: torch.Tensor | np.ndarray) -> RoutingSolution:
    """The routes of one decoded action sequence: a visit to the depot ends a route."""
    routes: list[list[int]] = [[]]
    for node in np.asarray(actions.cpu() if isinstance(actions, torch.Tensor) else actions):
        if int(node) == 0:
            if routes[-1]:
                routes.append([])
        else:
            routes[-1].append(int(node))
    return RoutingSolution.from_lists([r for r in routes if r])


class InstanceGenerator(Generator):
    """Draws training batches through :func:`rota.data.generate`, then batches them.

    Going through rota's own generator keeps the training distribution and
    the instances users generate identical (demands, capacities, windows,
    city sub-sampling). Each call draws a fresh seed from its own stream.

    With ``roads`` (a road network, :func:`rota.data.varied.area_roads`) instead
    of a ``city``, every :data:`INSTANCES_PER_VARIED_CITY` instances come from a
    new varied city (:func:`rota.data.varied.varied_city`) of
    :data:`VARIED_CITY_POINTS_PER_LOCATION` points per location, so a point
    is never seen in more than one group. Building those cities costs about 3 ms an
    instance on a CPU core, about half of an H200's training step at batch 64
    (``benchmarks/neural/training``): ``workers`` > 1 builds the groups in that many
    processes, with the same instances as in the calling one (0 or 1).
    """

    def __init__(
        self, problem: str, nodes: int, city=None, seed: int = 0, roads=None, workers: int = 0,
        **options,
    ):  # fmt: skip
        if city is not None and roads is not None:
            raise ValueError("give a city or a road network to vary, not both")
        if workers < 0:
            raise ValueError(f"workers must be 0 or more, got {workers!r}")
        if workers > 1 and roads is None:
            raise ValueError("worker processes build varied-road batches: give roads")
        self.problem, self.nodes, self.city, self.options = problem, nodes, city, options
        self.roads, self.workers = roads, workers
        self.num_loc = nodes if problem in ("atsp", "tsp") else nodes + 1
        self._seeds = np.random.default_rng(seed)
        self._pool = None

    def __deepcopy__(self, memo):
        # Lightning deep-copies the hyperparameters, this generator among them: the
        # city's matrices are read-only data to share, not to copy.
        return self

    def __getstate__(self):
        # checkpoints pickle the env and its generator; a process pool does not pickle
        return {**self.__dict__, "_pool": None}

    def _worker_pool(self):
        if self._pool is None:
            import multiprocessing
            import weakref
            from concurrent.futures import ProcessPoolExecutor

            # spawn: forking a process that holds torch's threads (or CUDA) is unsafe
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn")
            )
            weakref.finalize(self, self._pool.shutdown, cancel_futures=True)
        return self._pool

    def _generate(self, batch_size) -> TensorDict:
        from rota.data import generate

        count = int(np.prod(batch_size))
        seed = int(self._seeds.integers(2**31))
        if self.roads is None:
            instances = generate(
                self.problem, count, self.nodes, seed, city=self.city, **self.options
            )
            return to_tensordict(list(instances))
        from functools import partial

        sizes = [
            min(INSTANCES_PER_VARIED_CITY, count - start)
            for start in range(0, count, INSTANCES_PER_VARIED_CITY)
        ]
        group = partial(
            _varied_batch, self.problem, self.nodes, self.roads,
            VARIED_CITY_POINTS_PER_LOCATION * self.num_loc, seed, **self.options,
        )  # fmt: skip
        parts = range(len(sizes))
        if self.workers > 1 and len(sizes) > 1:
            groups = list(self._worker_pool().map(group, parts, sizes))
        else:
            groups = [group(part, size) for part, size in zip(parts, sizes, strict=True)]
        return torch.cat(groups) if len(groups) > 1 else groups[0]


def _varied_batch(*args, **options) -> TensorDict:
    """One group of :func:`rota.data.varied.varied_instances` as a batch.

    Worker processes return this rather than the instances, whose read-only
    mappings do not pickle.
    """
    from rota.data.varied import varied_instances

    return to_tensordict(varied_instances(*args, **options))


class RoutingEnv(RL4COEnvBase):
    """A batch of routing instances stepped one visit at a time (see the module docstring)."""

    name = "rota_routing"
    #: Whether the instances have a capacity / time windows to respect.
    capacitated = True
    timed = False

    def __init__(
        self,
        generator: Generator | None = None,
        fixed_sets: dict[str, TensorDict] | None = None,
        **kwargs,
    ):
        kwargs.setdefault("check_solution", False)
        super().__init__(**kwargs)
        self.generator = generator
        #: Phases (``val``, ``test``) served from a fixed batch instead of the generator.
        self.fixed_sets = dict(fixed_sets or {})
        self._make_spec()

    def dataset(self, batch_size=None, phase="train", filename=None):
        if phase in self.fixed_sets:
            from rl4co.data.dataset import TensorDictDataset

            return TensorDictDataset(self.fixed_sets[phase])
        return super().dataset(batch_size, phase=phase, filename=filename)

    # -- reset and step ---------------------------------------------------------
    def _reset(self, td: TensorDict | None = None, batch_size=None) -> TensorDict:
        device = td.device
        batch = td.batch_size
        n = td["distance"].shape[-1]
        visited = torch.zeros((*batch, n), dtype=torch.bool, device=device)
        state = td.clone()
        state.update(
            {
                "current_node": torch.zeros((*batch,), dtype=torch.int64, device=device),
                "used_capacity": torch.zeros((*batch,), device=device),
                "current_time": td["time_windows"][..., 0, 0].clone(),
                "visited": visited,
                "i": torch.zeros((*batch, 1), dtype=torch.int64, device=device),
            }
        )
        state.set("action_mask", self.get_action_mask(state))
        state.set("done", torch.zeros((*batch, 1), dtype=torch.bool, device=device))
        state.set("reward", torch.zeros((*batch, 1), device=device))
        return state

    def _step(self, td: TensorDict) -> TensorDict:
        action = td["action"]
        current = td["current_node"]
        rows = torch.arange(action.shape[0], device=action.device)
        at_depot = action == 0
        demand = td["demand"].gather(-1, action[:, None]).squeeze(-1)
        used = torch.where(at_depot, torch.zeros_like(demand), td["used_capacity"] + demand)
        arrival = (
            td["current_time"]
            + td["service_time"][rows, current]
            + td["duration"][rows, current, action]
        )
        opening = td["time_windows"][rows, action, 0]
        start = torch.maximum(arrival, opening)
        depot_open = td["time_windows"][:, 0, 0]
        time = torch.where(at_depot, depot_open, start)
        visited = td["visited"].scatter(-1, action[:, None], True)
        visited[:, 0] = False
        done = visited[:, 1:].all(-1)
        td.update(
            {
                "current_node": action,
                "used_capacity": used,
                "current_time": time,
                "visited": visited,
                "i": td["i"] + 1,
                "done": done[:, None],
                "reward": torch.zeros_like(done, dtype=torch.float32)[:, None],
            }
        )
        td.set("action_mask", self.get_action_mask(td))
        return td

    def get_action_mask(self, td: TensorDict) -> torch.Tensor:
        """Feasible next visits; a finished instance may only stay at the depot."""
        current = td["current_node"]
        rows = torch.arange(current.shape[0], device=current.device)
        mask = ~td["visited"]
        mask[:, 0] = False
        if self.capacitated:
            room = td["capacity"] - td["used_capacity"]
            mask &= td["demand"] <= room[:, None] + TIME_TOLERANCE
        if self.timed:
            leave = td["current_time"] + td["service_time"][rows, current]
            arrival = leave[:, None] + td["duration"][rows, current]
            windows = td["time_windows"]
            start = torch.maximum(arrival, windows[..., 0])
            back = start + td["service_time"] + td["duration"][:, :, 0]
            mask &= arrival <= windows[..., 1] + TIME_TOLERANCE
            mask &= back <= windows[:, :1, 1] + TIME_TOLERANCE
        done = td["visited"][:, 1:].all(-1)
        # The depot closes a route: never from the depot itself (no empty routes),
        # and in a TSP only once every city is toured.
        depot = current != 0 if self.capacitated else done
        mask[:, 0] = depot | done
        return mask

    # -- reward and checks --------------------------------------------------------
    def _get_reward(self, td: TensorDict, actions: torch.Tensor) -> torch.Tensor:
        return -route_costs(td, actions)

    def check_solution_validity(self, td: TensorDict, actions: torch.Tensor) -> None:
        clients = actions[actions > 0].numel()
        expected = td.batch_size[0] * (td["distance"].shape[-1] - 1)
        if clients != expected:
            raise AssertionError(f"{clients} client visits decoded, {expected} expected")

    def get_num_starts(self, td: TensorDict) -> int:
        return td["distance"].shape[-1] - 1

    def select_start_nodes(self, td: TensorDict, num_starts: int) -> torch.Tensor:
        """POMO's starts: every client once, as the first visit (rl4co's batch order)."""
        n = td["distance"].shape[-1]
        firsts = torch.arange(num_starts, device=td.device) % (n - 1) + 1
        return firsts.repeat_interleave(td.shape[0])

    def _make_spec(self) -> None:
        self.observation_spec = Composite(shape=())
        self.action_spec = Bounded(shape=(1,), dtype=torch.int64, low=0, high=2**31 - 1)
        self.reward_spec = Unbounded(shape=(1,))
        self.done_spec = Unbounded(shape=(1,), dtype=torch.bool)


def route_costs(td: TensorDict, actions: torch.Tensor) -> torch.Tensor:
    """The objective of each decoded sequence: unit cost times the closed routes' distance."""
    batch = actions.shape[0]
    depot = torch.zeros((batch, 1), dtype=actions.dtype, device=actions.device)
    tour = torch.cat((depot, actions, depot), dim=1)
    rows = torch.arange(batch, device=actions.device)[:, None]
    legs = td["distance"][rows, tour[:, :-1], tour[:, 1:]]
    return td["unit_cost"] * legs.sum(-1)


class ATSPEnv(RoutingEnv):
    """Asymmetric TSP: one tour from location 0 through every other location."""

    name = "rota_atsp"
    capacitated = False


class ACVRPEnv(RoutingEnv):
    """Asymmetric capacitated VRP on road matrices."""

    name = "rota_acvrp"


class ACVRPTWEnv(RoutingEnv):
    """Asymmetric capacitated VRP with time windows and service times."""

    name = "rota_acvrptw"
    timed = True


class CVRPEnv(RoutingEnv):
    """Euclidean capacitated VRP (the same constraints as ACVRP; symmetric data)."""

    name = "rota_cvrp"


ENVS = {"atsp": ATSPEnv, "acvrp": ACVRPEnv, "acvrptw": ACVRPTWEnv, "cvrp": CVRPEnv}


def make_env(problem: str, generator: Generator | None = None, **kwargs) -> RoutingEnv:
    """The environment of ``problem`` (one of :data:`PROBLEMS`); ``kwargs`` go to
    :class:`RoutingEnv` (``fixed_sets``) and rl4co's environment base."""
    if problem not in ENVS:
        raise ValueError(f"problem is {problem!r}, expected one of {', '.join(PROBLEMS)}")
    return ENVS[problem](generator=generator, **kwargs)
