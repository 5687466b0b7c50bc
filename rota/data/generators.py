"""Seeded instance generators: asymmetric instances on a city's road matrices, and synthetic
Euclidean sets in the distributions of the learning literature.

Every instance ``k`` of a set is drawn from its own generator seeded with
``(seed, k)``, so it does not depend on how many instances are drawn, and the
same call always gives the same instances (and, through :func:`write_set`, the
same bytes).

Sizes: ``nodes`` counts the clients of a VRP (plus one depot, location 0: a
CVRP100 has 101 locations) and all the cities of a TSP (location 0 is the
tour's start).

City problems (``city`` given): ``atsp``, ``acvrp`` and ``acvrptw`` on the
city's road matrices (integer metres and seconds); locations are points of the
city, drawn without replacement.

Synthetic problems (no city): ``tsp`` and ``cvrp`` in the unit square with exact
Euclidean distances (Kool et al. 2019), ``vrptw`` on Solomon's ``[0, 100]``
grid. With ``scale`` the coordinates are whole numbers in ``[0, scale]`` and
distances are rounded to the nearest integer (the CVRPLIB convention).

Distributions (``distribution``), for cities and synthetic sets alike:

``uniform``
    every location equally likely;
``cluster``
    a Gaussian mixture of ``clusters`` centres (uniform in the square, or
    random city points) with standard deviation ``cluster_std`` (a fraction of
    the map's extent); ``clusters=1`` gives a single cluster;
``mixed``
    half the clients uniform, half clustered.

The depot is always uniform. Demands are uniform integers in ``1..9`` and the
capacity follows :func:`default_capacity` (Nazari et al. 2018, Kool et al.
2019) unless ``capacity`` is given; the fleet is unlimited.

Variants with routing features (synthetic, on the ``cvrp`` or ``vrptw`` data):

``vrptw-release``
    a ``vrptw`` whose clients' goods reach the depot at a release time, drawn
    uniformly up to the last departure that still meets the client's window;
``mtvrp``
    multi-trip: ``ceil(trips / 3)`` vehicles, where ``trips`` is the fewest
    full loads the demand needs, each reloading at the depot as often as it must;
``pcvrp``
    prize-collecting: half the clients are optional, each with a prize of
    ``U(0.25, 0.75)`` times its distance from the depot;
``vrpspd``
    simultaneous pickup and delivery: every client also sends goods back
    (``1..9``), and the load on board must fit all along the route;
``pdp``
    paired pickup and delivery: clients come in pairs, the first loading
    ``1..9`` units that the second unloads on the same route (an odd client
    out sends ``1..9`` units back to the depot); nothing comes from the depot.

Time windows (``acvrptw``, ``vrptw``) are built so that every instance is
feasible: with horizon ``H``, client ``c``'s earliest arrival is
``a = t[0, c]`` and its latest service start that still lets the vehicle return
is ``l = H - s_c - t[c, 0]``; the window is centred uniformly in ``[a, l]``,
its width is a uniform fraction (``window``) of ``H``, and it is clipped to
``[0, l]``. It therefore always contains a time at or after ``a``, so the route
depot -> c -> depot is on time. A share ``1 - window_share`` of the clients get
the whole horizon instead (Solomon's densities are 25/50/75/100 %).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rota.data.city import City
from rota.data.osm import Progress
from rota.files import atomic_open, matrix_bytes, require_memory
from rota.problems import dumps_instance
from rota.problems.routing import RoutingInstance, Shipment, VehicleType
from rota.problems.routing.io.json import euclidean

CITY_PROBLEMS = ("atsp", "acvrp", "acvrptw")
SYNTHETIC_PROBLEMS = ("tsp", "cvrp", "vrptw", "vrptw-release", "mtvrp", "pcvrp", "vrpspd", "pdp")
#: Variants with routing features, and the base problem each one extends.
VARIANTS = {
    "vrptw-release": "vrptw",
    "mtvrp": "cvrp",
    "pcvrp": "cvrp",
    "vrpspd": "cvrp",
    "pdp": "cvrp",
}
#: Trips per vehicle a multi-trip fleet is sized for.
MULTI_TRIP_TRIPS = 3
#: Share of a prize-collecting instance's clients that are optional.
OPTIONAL_SHARE = 0.5
DISTRIBUTIONS = ("uniform", "cluster", "mixed")
AREAS = ("all", "train", "test")
COSTS = ("distance", "duration")

#: Vehicle capacity by number of clients: Nazari/Kool for 10..100; the larger
#: sizes follow common practice in later scaling studies. Other sizes are
#: interpolated linearly (and held constant outside the table).
CAPACITY_BY_SIZE = {10: 20, 20: 30, 50: 40, 100: 50, 200: 70, 500: 100, 1000: 150}

#: City time-window defaults: an 8-hour day and 5 minutes per client.
CITY_HORIZON_S = 8 * 3600
CITY_SERVICE_S = 300


def default_capacity(clients: int) -> int:
    """The usual vehicle capacity for a CVRP with ``clients`` clients and demands in 1..9."""
    sizes = sorted(CAPACITY_BY_SIZE)
    return int(round(float(np.interp(clients, sizes, [CAPACITY_BY_SIZE[s] for s in sizes]))))


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} is {value!r}, expected one of {', '.join(choices)}")
    return value


def _check_fraction(name: str, value: Any, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not low <= number <= high:
        raise ValueError(f"{name} is {value!r}, expected a number in [{low}, {high}]")
    return number


def generate(
    problem: str,
    count: int,
    nodes: int,
    seed: int,
    city: City | None = None,
    distribution: str = "uniform",
    *,
    clusters: int = 3,
    cluster_std: float = 0.07,
    area: str = "all",
    test_share: float = 0.25,
    capacity: int | None = None,
    cost: str = "distance",
    scale: int | None = None,
    service_time: float | None = None,
    horizon: float | None = None,
    window: tuple[float, float] = (0.05, 0.25),
    window_share: float = 1.0,
) -> Iterator[RoutingInstance]:
    """Yield ``count`` seeded instances (see the module docstring for the conventions).

    Parameters
    ----------
    problem
        ``atsp``, ``acvrp`` or ``acvrptw`` with a ``city``; ``tsp``, ``cvrp`` or
        ``vrptw`` without.
    count
        Number of instances.
    nodes
        Clients of a VRP (plus a depot), cities of a TSP.
    seed
        Instance ``k`` is drawn from ``numpy.random.default_rng([seed, k])``.
    city
        Road matrices to draw asymmetric instances from.
    distribution
        ``uniform``, ``cluster`` or ``mixed``.
    clusters, cluster_std
        Number of cluster centres and their standard deviation, as a fraction
        of the map's extent (the unit square, or the larger side of the city area).
    area, test_share
        City only: ``train`` keeps the points before the ``1 - test_share``
        quantile along the map's longer axis, ``test`` the points after it, so
        train and test sets come from disjoint areas; ``all`` keeps every point.
    capacity
        Vehicle capacity; default :func:`default_capacity`.
    cost
        City only: the objective matrix, ``distance`` (metres) or ``duration`` (seconds).
    scale
        Synthetic only: integer coordinates in ``[0, scale]`` and distances
        rounded to the nearest integer, instead of exact floats.
    service_time, horizon
        Time windows: service time per client and depot closing time. City
        defaults: 300 s and 8 h (longer when a round trip needs it); synthetic
        defaults: a tenth and ten times the grid side.
    window
        Range of window widths, as fractions of the horizon.
    window_share
        Share of the clients that get a window (the others get the horizon).

    Raises
    ------
    ValueError
        A parameter is out of range or does not fit the problem (checked
        before the first instance is drawn).
    """
    count = _check_int("count", count, 1)
    seed = _check_int("seed", seed, 0)
    distribution = _check_choice("distribution", distribution, DISTRIBUTIONS)
    clusters = _check_int("clusters", clusters, 1)
    cluster_std = _check_fraction("cluster_std", cluster_std, 1e-6, 10.0)
    if city is None:
        if problem in CITY_PROBLEMS:
            raise ValueError(f"problem {problem!r} needs a city (road matrices)")
        problem = _check_choice("problem", problem, SYNTHETIC_PROBLEMS)
        if area != "all":
            raise ValueError(f"area {area!r} needs a city: synthetic sets have no map")
    else:
        if problem in VARIANTS:
            raise ValueError(
                f"problem {problem!r} is generated on synthetic maps only, not on a city"
            )
        if problem in SYNTHETIC_PROBLEMS:
            raise ValueError(
                f"problem {problem!r} is Euclidean; on a city use "
                f"{CITY_PROBLEMS[SYNTHETIC_PROBLEMS.index(problem)]!r}"
            )
        problem = _check_choice("problem", problem, CITY_PROBLEMS)
        if scale is not None:
            raise ValueError(f"scale {scale!r} applies to synthetic sets, not to a city")
    is_tsp = problem in ("atsp", "tsp")
    nodes = _check_int("nodes", nodes, 2 if is_tsp else 1)
    if capacity is not None:
        if is_tsp:
            raise ValueError(f"capacity {capacity!r} applies to a VRP, not to {problem!r}")
        capacity = _check_int("capacity", capacity, 9)  # the largest demand must fit
    cost = _check_choice("cost", cost, COSTS)
    if city is None and cost != "distance":
        raise ValueError(f"cost {cost!r} needs a city: synthetic sets have one matrix")
    timed = VARIANTS.get(problem, problem).endswith("tw")
    if not timed:
        for name, value in (("service_time", service_time), ("horizon", horizon)):
            if value is not None:
                raise ValueError(f"{name} {value!r} applies to time windows, not to {problem!r}")
    if scale is not None:
        scale = _check_int("scale", scale, 1)
    if isinstance(window, str) or len(window) != 2:
        raise ValueError(f"window is {window!r}, expected two fractions (low, high)")
    low, high = (_check_fraction("window", w, 0.0, 1.0) for w in window)
    if low > high:
        raise ValueError(f"window is {tuple(window)!r}, expected (low, high) with low <= high")
    window_share = _check_fraction("window_share", window_share, 0.0, 1.0)
    for name, value in (("service_time", service_time), ("horizon", horizon)):
        if value is not None and not (math.isfinite(float(value)) and float(value) >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if horizon is not None and float(horizon) <= 0:
        raise ValueError(f"horizon must be positive, got {horizon!r}")

    locations = nodes if is_tsp else nodes + 1
    # The instance's matrices (distance, a duration from a city), its validated
    # copies and its JSON line (about 20 bytes a number) live at once.
    matrices = 2 if city is not None and timed else 1
    require_memory(
        matrix_bytes(locations, 4 * matrices) + 20.0 * locations * locations * matrices,
        f"an instance of {locations} locations",
    )
    options = {
        "problem": problem,
        "nodes": nodes,
        "seed": seed,
        "distribution": distribution,
        "clusters": clusters,
        "cluster_std": cluster_std,
        "capacity": capacity if capacity is not None else default_capacity(nodes),
        "service_time": service_time,
        "horizon": horizon,
        "window": (low, high),
        "window_share": window_share,
    }
    if city is None:
        return _synthetic(count, scale, options)
    area = _check_choice("area", area, AREAS)
    test_share = _check_fraction("test_share", test_share, 0.0, 1.0)
    pool = area_points(city, area, test_share)
    needed = nodes if is_tsp else nodes + 1
    if pool.size < needed:
        raise ValueError(
            f"city {city.name} has {pool.size} points in area {area!r}, fewer than the "
            f"{needed} locations a {problem} with {nodes} nodes needs"
        )
    options.update(area=area, test_share=test_share, cost=cost)
    return _on_city(count, city, pool, options)


def long_axis(city: City) -> int:
    """The axis along which the city's points spread most: 0 east-west, 1 north-south."""
    xy = city.xy()
    return int(np.argmax(xy.max(axis=0) - xy.min(axis=0)))


def area_points(city: City, area: str, test_share: float = 0.25) -> np.ndarray:
    """Indices of the city's points in ``area`` (``all``, ``train`` or ``test``).

    The points are ordered along the longer axis of the map (east-west or
    north-south); the last ``round(test_share * P)`` are the test area, the
    others the train area: two disjoint half-planes.
    """
    _check_choice("area", area, AREAS)
    if area == "all":
        return np.arange(city.points)
    order = np.argsort(city.xy()[:, long_axis(city)], kind="stable")
    cut = city.points - int(round(test_share * city.points))
    chosen = order[:cut] if area == "train" else order[cut:]
    return np.sort(chosen)


def _cluster_weights(xy: np.ndarray, centres: np.ndarray, std: float, extent: float) -> np.ndarray:
    squared = ((xy[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    weights = np.exp(-squared / (2 * (std * extent) ** 2)).sum(1)
    # Far points keep a tiny chance, so a cluster smaller than the sample still fills it.
    weights += 1e-12 * max(float(weights.max()), 1e-300)
    return weights / weights.sum()


def _draw_city_nodes(
    rng: np.random.Generator, city_xy: np.ndarray, pool: np.ndarray, clients: int, options: dict
) -> np.ndarray:
    """Point indices of the clients, drawn without replacement from ``pool``."""
    distribution = options["distribution"]
    if distribution == "uniform":
        return rng.choice(pool, size=clients, replace=False)
    uniform = clients // 2 if distribution == "mixed" else 0
    first = rng.choice(pool, size=uniform, replace=False)
    rest = np.setdiff1d(pool, first)
    xy = city_xy[rest]
    extent = float(max(np.ptp(city_xy[pool], axis=0).max(), 1.0))
    centres = xy[rng.choice(rest.size, size=options["clusters"], replace=True)]
    p = _cluster_weights(xy, centres, options["cluster_std"], extent)
    second = rng.choice(rest, size=clients - uniform, replace=False, p=p)
    return np.concatenate((first, second))


def _on_city(count: int, city: City, pool: np.ndarray, options: dict) -> Iterator[RoutingInstance]:
    problem, nodes, seed = options["problem"], options["nodes"], options["seed"]
    city_xy = city.xy()
    matrix = city.distance if options["cost"] == "distance" else city.duration
    tag = city.name.lower()
    provenance = {
        "source": city.metadata.get("source"),
        "sha256": city.metadata.get("sha256"),
        "points": city.points,
        "seed": city.metadata.get("seed"),
    }
    for k in range(count):
        rng = np.random.default_rng([seed, k])
        if problem == "atsp":
            chosen = _draw_city_nodes(rng, city_xy, pool, nodes, options)
        else:
            depot = int(rng.choice(pool))
            rest = pool[pool != depot]
            chosen = np.concatenate(([depot], _draw_city_nodes(rng, city_xy, rest, nodes, options)))
        index = np.ix_(chosen, chosen)
        metadata = {
            "generator": "rota.data.generators",
            **_recorded(options),
            "index": k,
            "city": provenance,
            "city_points": chosen.tolist(),
            "units": {"distance": "m" if options["cost"] == "distance" else "s", "time": "s"},
            "coords": "lon,lat",
        }
        fields = {
            "distance": matrix[index],
            "coords": np.stack((city.lon[chosen], city.lat[chosen]), axis=1),
            "name": f"{problem}{nodes}-{tag}-{options['distribution']}-s{seed}-{k}",
        }
        yield _instance(rng, problem, fields, city.duration[index], options, metadata)


def _recorded(options: dict) -> dict:
    keys = ["problem", "nodes", "seed", "distribution"]
    if options["distribution"] != "uniform":
        keys += ["clusters", "cluster_std"]
    if options["problem"] not in ("atsp", "tsp"):
        keys.append("capacity")
    keys += [k for k in ("area", "test_share", "cost", "scale") if k in options]
    return {k: options[k] for k in keys}


def _unit_square(
    rng: np.random.Generator, size: int, distribution: str, clusters: int, std: float
) -> np.ndarray:
    coords = rng.random((size, 2))
    clustered = (
        0 if distribution == "uniform" else size - (size // 2 if distribution == "mixed" else 0)
    )
    if clustered:
        centres = rng.random((clusters, 2))
        member = rng.integers(0, clusters, size=clustered)
        points = centres[member] + rng.normal(0.0, std, size=(clustered, 2))
        coords[size - clustered :] = np.clip(points, 0.0, 1.0)
    return coords


def _synthetic(count: int, scale: int | None, options: dict) -> Iterator[RoutingInstance]:
    problem, nodes, seed = options["problem"], options["nodes"], options["seed"]
    options = {**options, "scale": scale}
    grid = 100.0 if VARIANTS.get(problem, problem) == "vrptw" else 1.0
    for k in range(count):
        rng = np.random.default_rng([seed, k])
        depot = rng.random((0 if problem == "tsp" else 1, 2))
        clients = _unit_square(
            rng, nodes, options["distribution"], options["clusters"], options["cluster_std"]
        )
        coords = np.concatenate((depot, clients))
        if scale is None:
            coords = coords * grid
            distance = euclidean(coords)
        else:
            coords = np.rint(coords * scale)
            distance = euclidean(coords, "nearest")
        metadata = {
            "generator": "rota.data.generators",
            **_recorded(options),
            "index": k,
            "distance_rounding": "exact" if scale is None else "nearest",
        }
        fields = {
            "distance": distance,
            "coords": coords,
            "name": f"{problem}{nodes}-{options['distribution']}-s{seed}-{k}",
        }
        yield _instance(rng, problem, fields, None, options, metadata)


def _instance(
    rng: np.random.Generator,
    problem: str,
    fields: dict,
    duration: np.ndarray | None,
    options: dict,
    metadata: dict,
) -> RoutingInstance:
    n = fields["distance"].shape[0]
    if problem in ("atsp", "tsp"):
        return RoutingInstance(
            vehicle_types=(VehicleType(capacity=None, count=1),), metadata=metadata, **fields
        )
    demand = np.concatenate(([0], rng.integers(1, 10, size=n - 1)))
    vehicles = (VehicleType(capacity=float(options["capacity"]), count=None),)
    if problem in VARIANTS:
        return _variant(rng, problem, fields, demand, options, metadata)
    if problem in ("cvrp", "acvrp"):
        return RoutingInstance(vehicle_types=vehicles, demand=demand, metadata=metadata, **fields)
    travel = fields["distance"] if duration is None else duration
    integer = duration is not None or options.get("scale") is not None
    windows, service, horizon = _time_windows(rng, travel, integer, options)
    metadata.update(service_time=float(service[1]), horizon=float(horizon))
    return RoutingInstance(
        vehicle_types=vehicles,
        demand=demand,
        time_windows=windows,
        service_time=service,
        duration=duration,
        metadata=metadata,
        **fields,
    )


def _variant(
    rng: np.random.Generator,
    problem: str,
    fields: dict,
    demand: np.ndarray,
    options: dict,
    metadata: dict,
) -> RoutingInstance:
    """A synthetic instance with routing features (see the module docstring)."""
    n = len(demand)
    capacity = float(options["capacity"])
    integer = options.get("scale") is not None
    distance = fields["distance"]
    vehicles = (VehicleType(capacity=capacity, count=None),)
    if problem == "vrptw-release":
        windows, service, horizon = _time_windows(rng, distance, integer, options)
        metadata.update(service_time=float(service[1]), horizon=float(horizon))
        release = release_times(rng, windows, distance, service, integer)
        return RoutingInstance(
            vehicle_types=vehicles, demand=demand, time_windows=windows, service_time=service,
            release_time=release, metadata=metadata, **fields,
        )  # fmt: skip
    if problem == "mtvrp":
        trips = math.ceil(float(demand.sum()) / capacity)
        count = max(1, math.ceil(trips / MULTI_TRIP_TRIPS))
        vehicles = (VehicleType(capacity=capacity, count=count, reload_depots=(0,)),)
        return RoutingInstance(vehicle_types=vehicles, demand=demand, metadata=metadata, **fields)
    if problem == "pcvrp":
        optional = rng.random(n) < OPTIONAL_SHARE
        optional[0] = False
        # about a third of the optional clients are then not worth their detour
        prize = np.where(optional, rng.uniform(0.25, 0.75, size=n) * distance[0], 0.0)
        prize = np.rint(prize) if integer else prize
        return RoutingInstance(
            vehicle_types=vehicles, demand=demand, required=~optional, prize=prize,
            metadata=metadata, **fields,
        )  # fmt: skip
    if problem == "vrpspd":
        pickup = np.concatenate(([0], rng.integers(1, 10, size=n - 1)))
        return RoutingInstance(
            vehicle_types=vehicles, demand=demand, pickup=pickup, metadata=metadata, **fields
        )
    # pdp: clients 1-2, 3-4, ... are pickup-delivery pairs
    pairs = [(c, c + 1) for c in range(1, n - 1, 2)]
    shipments = tuple(Shipment(a, b, float(rng.integers(1, 10))) for a, b in pairs)
    # An odd client out (an even number of locations) sends goods back to the depot:
    # a delivery from the depot would mix load kinds on one vehicle.
    lone = np.zeros(n)
    if n % 2 == 0:
        lone[n - 1] = demand[n - 1]
    return RoutingInstance(
        vehicle_types=vehicles, demand=np.zeros(n), pickup=lone, shipments=shipments,
        metadata=metadata, **fields,
    )  # fmt: skip


def release_times(
    rng: np.random.Generator,
    windows: np.ndarray,
    travel: np.ndarray,
    service: np.ndarray,
    integer: bool,
    depot: int = 0,
) -> np.ndarray:
    """Release times uniform up to each client's last feasible departure from ``depot``.

    A vehicle leaving at the release time still reaches the client within its
    window, so one route per client stays feasible. Whole units when ``integer``.
    """
    latest = np.maximum(windows[:, 1] - service[depot] - travel[depot], 0.0)
    release = rng.uniform(0.0, 1.0, size=len(latest)) * latest
    release = np.floor(release) if integer else release
    release[depot] = 0.0
    return release


def _time_windows(
    rng: np.random.Generator, travel: np.ndarray, integer: bool, options: dict
) -> tuple[np.ndarray, np.ndarray, float]:
    """Feasible windows around each client's reachable interval (see the module docstring)."""
    n = travel.shape[0]
    city = options.get("cost") is not None
    side = 1.0 if options.get("scale") is None else options["scale"] / 100.0
    if options["service_time"] is not None:
        service_value = float(options["service_time"])
    else:
        service_value = CITY_SERVICE_S if city else 10.0 * side
    service = np.full(n, service_value)
    service[0] = 0.0
    out, back = travel[0], travel[:, 0]
    needed = float(np.max(out + service + back))
    if options["horizon"] is not None:
        horizon = float(options["horizon"])
        if horizon < needed:
            raise ValueError(
                f"horizon {horizon:g} is shorter than the longest depot round trip {needed:g} "
                "(travel plus service): some client could never be served"
            )
    else:
        horizon = max(CITY_HORIZON_S if city else 1000.0 * side, needed)
    if integer:
        horizon = float(math.ceil(horizon))
    latest = horizon - service - back
    low, high = options["window"]
    half = rng.uniform(low, high, size=n) * horizon / 2
    centre = rng.uniform(out, latest)
    start = np.maximum(0.0, centre - half)
    end = np.minimum(latest, centre + half)
    if integer:
        # Whole units, still containing a time at or after the earliest arrival.
        start, end = np.floor(start), np.maximum(np.floor(end), out)
    windowed = rng.random(n) < options["window_share"]
    windows = np.stack((np.where(windowed, start, 0.0), np.where(windowed, end, horizon)), axis=1)
    windows[0] = (0.0, horizon)
    return windows, service, horizon


def write_set(
    instances: Iterable[RoutingInstance],
    path: str | Path,
    progress: Progress | None = None,
    total: int | None = None,
) -> int:
    """Write instances as JSON lines (one :func:`dumps_instance` per line); return how many.

    The lines go to a temporary file beside ``path`` that is renamed onto it
    at the end, so an interruption (an error, Ctrl-C) leaves no half-written
    set and keeps any previous file. ``progress("writing", done, total)`` is
    called after each instance.
    """
    written = 0
    with atomic_open(path, "w") as handle:
        for instance in instances:
            handle.write(dumps_instance(instance))
            handle.write("\n")
            written += 1
            if progress is not None:
                progress("writing", written, total)
    return written
