"""Ground-station contact scheduling: the instance, the schedule and the evaluator.

A network of antennas (grouped in stations) serves requests of spacecraft
missions. A request asks for one track of a requested duration (at least a
minimum duration) inside its time window, on one of its allowed resources,
inside one of that resource's view periods; a resource is one antenna or an
array of antennas used together. An antenna serves one track at a time and is
busy during the request's setup before the track and its teardown after it,
and cannot be used during its maintenance; a spacecraft has one link at a
time, with an optional mode-switch time between two of its tracks. The week
is oversubscribed, so the family maximises: by default the hours scheduled,
or the value of the requests scheduled (the instance says which).

Times are seconds on one clock (Unix seconds for the DSN weeks, seconds from
the start of the horizon for orbit-derived and generated instances), never
negative. Checks tolerate :data:`TOLERANCE` seconds of float rounding.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from rota.problems.base import Violation

#: Seconds of float rounding every time comparison tolerates.
TOLERANCE = 1e-6
#: What an instance maximises: ``hours`` scheduled, or the ``value`` of the requests scheduled.
OBJECTIVES = ("hours", "value")
#: Separator of antenna names in a resource name (``DSS-34_DSS-35``), as in the SatNet files.
ARRAY_SEPARATOR = "_"


def _number(where: str, name: str, value: Any, *, positive: bool = False) -> float:
    """``value`` as a finite float >= 0 (> 0 when ``positive``), or a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: field {name!r} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{where}: field {name!r} must be finite, got {value}")
    if value < 0 or (positive and value == 0):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"{where}: field {name!r} must be {kind}, got {value:g}")
    return value


def _interval(where: str, name: str, value: Any) -> tuple[float, float]:
    """``value`` as a ``(start, end)`` pair of non-negative times with start < end."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"{where}: field {name!r} must be a [start, end] pair, got {value!r}")
    start = _number(where, f"{name} start", value[0])
    end = _number(where, f"{name} end", value[1])
    if not start < end:
        raise ValueError(f"{where}: field {name!r} is [{start:g}, {end:g}]: start must be < end")
    return start, end


def _name(where: str, field_name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: field {field_name!r} must be a non-empty string, got {value!r}")
    return value


def hours(seconds: float) -> float:
    return seconds / 3600.0


@dataclass(frozen=True)
class Antenna:
    """One antenna: its name, its station and its maintenance intervals (seconds)."""

    name: str
    station: str | None = None
    maintenance: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        where = f"antenna {self.name!r}"
        _name(where, "name", self.name)
        if self.station is not None:
            _name(where, "station", self.station)
        spans = tuple(
            _interval(where, f"maintenance[{k}]", m) for k, m in enumerate(self.maintenance)
        )
        object.__setattr__(self, "maintenance", tuple(sorted(spans)))


@dataclass(frozen=True)
class Resource:
    """One way to serve a request: antennas used together, and their view periods.

    ``antennas`` holds one name (a single antenna) or several (an array, every
    antenna busy for the whole track). A track must lie inside one of the
    ``view_periods``; a resource without any can never be used.
    """

    antennas: tuple[str, ...]
    view_periods: tuple[tuple[float, float], ...] = ()

    @property
    def name(self) -> str:
        """The antennas joined by ``_``, as a schedule names the resource."""
        return ARRAY_SEPARATOR.join(self.antennas)


@dataclass(frozen=True)
class Request:
    """A request for one track. Durations, setup and teardown are in seconds.

    Parameters
    ----------
    id
        Unique name of the request (SatNet's ``track_id``).
    mission
        The mission whose figures (unsatisfied fraction) the request counts for.
    duration, min_duration
        Requested and minimum acceptable track length; ``0 < min <= duration``.
    window
        ``(start, end)``: the track lies inside it.
    resources
        The allowed resources, each with its view periods.
    setup, teardown
        Time the antennas are busy before and after the track.
    value
        What the request is worth when scheduled (``value`` objective).
    spacecraft
        The spacecraft whose one link the track uses; by default the mission.
    """

    id: str
    mission: str
    duration: float
    min_duration: float
    window: tuple[float, float]
    resources: tuple[Resource, ...]
    setup: float = 0.0
    teardown: float = 0.0
    value: float = 1.0
    spacecraft: str | None = None

    @property
    def craft(self) -> str:
        """The spacecraft (the mission when none is named)."""
        return self.spacecraft if self.spacecraft is not None else self.mission

    def resource_named(self, name: str) -> Resource | None:
        return self._resources.get(name)

    @functools.cached_property
    def _resources(self) -> dict[str, Resource]:
        return {r.name: r for r in self.resources}


@dataclass(frozen=True, eq=False)
class ContactInstance:
    """A contact-scheduling instance, validated and immutable.

    Parameters
    ----------
    antennas
        Every antenna, with its station and maintenance.
    requests
        Every request; ids unique.
    objective
        ``"hours"`` (total track hours, the default) or ``"value"`` (total
        value of the requests scheduled).
    mode_switch
        Seconds a spacecraft needs between the end of one track and the start
        of its next.
    name
        Instance name.
    metadata
        Where the instance comes from (source file, epoch, generator settings).

    Raises
    ------
    ValueError
        One line naming the request or antenna, the field and the value.
    """

    antennas: tuple[Antenna, ...]
    requests: tuple[Request, ...]
    objective: str = "hours"
    mode_switch: float = 0.0
    name: str = "contacts"
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "antennas", tuple(self.antennas))
        set_(self, "requests", tuple(self.requests))
        set_(self, "metadata", MappingProxyType(dict(self.metadata)))
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"field 'objective' is {self.objective!r}, expected one of {', '.join(OBJECTIVES)}"
            )
        set_(self, "mode_switch", _number("instance", "mode_switch", self.mode_switch))
        if not self.antennas:
            raise ValueError("field 'antennas' is empty: an instance needs at least one antenna")
        if not self.requests:
            raise ValueError("field 'requests' is empty: an instance needs at least one request")
        names: set[str] = set()
        for antenna in self.antennas:
            if not isinstance(antenna, Antenna):
                raise ValueError(f"antennas must be Antenna objects, got {antenna!r}")
            if antenna.name in names:
                raise ValueError(f"antenna {antenna.name!r} is listed twice")
            names.add(antenna.name)
        seen: set[str] = set()
        checked = []
        for request in self.requests:
            if not isinstance(request, Request):
                raise ValueError(f"requests must be Request objects, got {request!r}")
            if request.id in seen:
                raise ValueError(f"request {request.id!r} is listed twice")
            seen.add(request.id)
            checked.append(_checked(request, names))
        set_(self, "requests", tuple(checked))

    @property
    def num_requests(self) -> int:
        return len(self.requests)

    @functools.cached_property
    def request_index(self) -> dict[str, int]:
        """Request id -> position in :attr:`requests`."""
        return {r.id: i for i, r in enumerate(self.requests)}

    @functools.cached_property
    def antenna_index(self) -> dict[str, int]:
        """Antenna name -> position in :attr:`antennas`."""
        return {a.name: i for i, a in enumerate(self.antennas)}

    @functools.cached_property
    def missions(self) -> tuple[str, ...]:
        """Mission names, in order of first request."""
        return tuple(dict.fromkeys(r.mission for r in self.requests))

    @property
    def requested_hours(self) -> float:
        return hours(sum(r.duration for r in self.requests))

    @property
    def has_arrays(self) -> bool:
        return any(len(res.antennas) > 1 for r in self.requests for res in r.resources)


def _checked(request: Request, antennas: set[str]) -> Request:
    """``request`` with its numbers as floats and its tuples normalised, or a ValueError."""
    where = f"request {request.id!r}"
    _name(f"request {request.id!r}", "id", request.id)
    _name(where, "mission", request.mission)
    if request.spacecraft is not None:
        _name(where, "spacecraft", request.spacecraft)
    duration = _number(where, "duration", request.duration, positive=True)
    minimum = _number(where, "min_duration", request.min_duration, positive=True)
    if minimum > duration + TOLERANCE:
        raise ValueError(
            f"{where}: field 'min_duration' is {minimum:g} s, more than its 'duration' "
            f"{duration:g} s"
        )
    window = _interval(where, "window", request.window)
    span = window[1] - window[0]
    if duration > span + TOLERANCE:
        raise ValueError(
            f"{where}: field 'duration' is {duration:g} s, longer than its window "
            f"[{window[0]:g}, {window[1]:g}] ({span:g} s)"
        )
    setup = _number(where, "setup", request.setup)
    teardown = _number(where, "teardown", request.teardown)
    value = _number(where, "value", request.value)
    if not request.resources:
        raise ValueError(f"{where}: field 'resources' is empty: name at least one resource")
    resources = []
    names: set[str] = set()
    for k, resource in enumerate(request.resources):
        if not isinstance(resource, Resource):
            raise ValueError(f"{where}: resources[{k}] must be a Resource, got {resource!r}")
        group = tuple(resource.antennas)
        if not group:
            raise ValueError(f"{where}: resources[{k}] names no antenna")
        for antenna in group:
            if not isinstance(antenna, str):
                raise ValueError(f"{where}: resources[{k}] antenna {antenna!r} is not a name")
            if antenna not in antennas:
                raise ValueError(f"{where}: resources[{k}] uses unknown antenna {antenna!r}")
        if len(set(group)) != len(group):
            raise ValueError(f"{where}: resources[{k}] lists an antenna twice: {list(group)}")
        fixed = Resource(group, ())
        if fixed.name in names:
            raise ValueError(f"{where}: resource {fixed.name!r} is listed twice")
        names.add(fixed.name)
        periods = tuple(
            _interval(where, f"resources[{k}] view_periods[{v}]", vp)
            for v, vp in enumerate(resource.view_periods)
        )
        resources.append(Resource(group, tuple(sorted(periods))))
    return Request(
        id=request.id,
        mission=request.mission,
        duration=duration,
        min_duration=minimum,
        window=window,
        resources=tuple(resources),
        setup=setup,
        teardown=teardown,
        value=value,
        spacecraft=request.spacecraft,
    )


@dataclass(frozen=True)
class Track:
    """One scheduled track: the request, the resource (antennas joined by ``_``) and its times."""

    request: str
    resource: str
    start: float
    end: float

    def __post_init__(self) -> None:
        where = f"track of {self.request!r}"
        _name(where, "request", self.request)
        _name(where, "resource", self.resource)
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{where}: field {name!r} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{where}: field {name!r} must be finite, got {value}")
            object.__setattr__(self, name, float(value))

    @property
    def length(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class ContactSolution:
    """A schedule: at most one track per request; unscheduled requests have none."""

    tracks: tuple[Track, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tracks", tuple(self.tracks))


@dataclass(frozen=True)
class ContactEvaluation:
    """What :func:`evaluate` found: the objective, every violation and the operators' figures.

    ``unsatisfied`` maps each mission to the fraction of its requested hours
    that is not scheduled, ``U_i``; ``u_max`` and ``u_rms`` are their maximum
    and root mean square over missions, as the SatNet benchmark reports them.
    A track counts for its request up to the requested duration.
    """

    objective: float
    violations: tuple[Violation, ...]
    hours_requested: float
    hours_scheduled: float
    value_scheduled: float
    requests: int
    satisfied: int
    fully_satisfied: int
    partly_satisfied: int
    unsatisfied: Mapping[str, float]
    u_max: float
    u_rms: float

    @property
    def feasible(self) -> bool:
        return not self.violations

    @property
    def hours_unsatisfied(self) -> float:
        return self.hours_requested - self.hours_scheduled


def busy(request: Request, track: Track) -> tuple[float, float]:
    """The interval the track's antennas are busy: setup before, teardown after."""
    return track.start - request.setup, track.end + request.teardown


def _overlaps(
    items: list[tuple[float, float, int]], kind: str, what: str, tracks: tuple[Track, ...]
) -> list[Violation]:
    """A violation for each interval that starts before an earlier one (by start) ends."""
    found = []
    latest: tuple[float, int] | None = None
    for start, end, k in sorted(items):
        if latest is not None and start < latest[0] - TOLERANCE:
            other = tracks[latest[1]]
            found.append(
                Violation(
                    kind,
                    f"tracks of {other.request!r} and {tracks[k].request!r} overlap on {what}",
                )
            )
        if latest is None or end > latest[0]:
            latest = (end, k)
    return found


def evaluate(instance: ContactInstance, solution: ContactSolution) -> ContactEvaluation:
    """The objective of ``solution``, every constraint it breaks, and the operators' figures.

    The objective is the hours of every track of a known request (or, with the
    ``value`` objective, the value of every request with a track), whether or
    not the track breaks a constraint, so that reports can show how far off a
    schedule is. Violations, by kind: ``unknown_request``, ``repeated_request``
    (a second track of one request: it counts for nothing), ``unknown_resource``,
    ``duration`` (shorter than the minimum, longer than requested),
    ``window``, ``view_period`` (in no view period of its resource),
    ``antenna_overlap`` (busy intervals, setup and teardown included, overlap
    on an antenna), ``maintenance`` and ``spacecraft_overlap`` (two tracks of
    one spacecraft closer than the mode-switch time).
    """
    violations: list[Violation] = []
    tracks = solution.tracks
    index = instance.request_index
    scheduled: dict[int, float] = {}
    value = 0.0
    total = 0.0
    per_antenna: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    per_craft: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for k, track in enumerate(tracks):
        r = index.get(track.request)
        if r is None:
            violations.append(
                Violation("unknown_request", f"track {k} names unknown request {track.request!r}")
            )
            continue
        if r in scheduled:
            violations.append(
                Violation("repeated_request", f"request {track.request!r} has more than one track")
            )
            continue
        request = instance.requests[r]
        length = track.end - track.start
        scheduled[r] = min(max(length, 0.0), request.duration)
        total += max(length, 0.0)
        value += request.value
        where = f"track of {request.id!r} on {track.resource!r} [{track.start:g}, {track.end:g}]"
        if length < request.min_duration - TOLERANCE:
            violations.append(
                Violation(
                    "duration",
                    f"{where} lasts {length:g} s, less than its minimum {request.min_duration:g} s",
                )
            )
        elif length > request.duration + TOLERANCE:
            violations.append(
                Violation(
                    "duration",
                    f"{where} lasts {length:g} s, more than requested {request.duration:g} s",
                )
            )
        w0, w1 = request.window
        if track.start < w0 - TOLERANCE or track.end > w1 + TOLERANCE:
            violations.append(
                Violation("window", f"{where} is outside its window [{w0:g}, {w1:g}]")
            )
        per_craft[request.craft].append((track.start, track.end + instance.mode_switch, k))
        resource = request.resource_named(track.resource)
        if resource is None:
            violations.append(
                Violation(
                    "unknown_resource",
                    f"{where}: {track.resource!r} is not an allowed resource of the request",
                )
            )
            continue
        if not any(
            a - TOLERANCE <= track.start and track.end <= b + TOLERANCE
            for a, b in resource.view_periods
        ):
            violations.append(
                Violation("view_period", f"{where} lies in no view period of {track.resource!r}")
            )
        b0, b1 = busy(request, track)
        for name in resource.antennas:
            per_antenna[name].append((b0, b1, k))
            for m0, m1 in instance.antennas[instance.antenna_index[name]].maintenance:
                if b0 < m1 - TOLERANCE and b1 > m0 + TOLERANCE:
                    violations.append(
                        Violation(
                            "maintenance",
                            f"{where} (busy [{b0:g}, {b1:g}]) overlaps maintenance of {name!r} "
                            f"[{m0:g}, {m1:g}]",
                        )
                    )
    for name, items in per_antenna.items():
        violations += _overlaps(items, "antenna_overlap", f"antenna {name!r}", tracks)
    for craft, items in per_craft.items():
        violations += _overlaps(items, "spacecraft_overlap", f"spacecraft {craft!r}", tracks)

    requested: dict[str, float] = defaultdict(float)
    served: dict[str, float] = defaultdict(float)
    fully = partly = 0
    for r, request in enumerate(instance.requests):
        requested[request.mission] += request.duration
        if r in scheduled:
            served[request.mission] += scheduled[r]
            if scheduled[r] >= request.duration - TOLERANCE:
                fully += 1
            else:
                partly += 1
    unsatisfied = {m: 1.0 - served[m] / requested[m] for m in instance.missions}
    fractions = list(unsatisfied.values())
    objective = hours(total) if instance.objective == "hours" else value
    return ContactEvaluation(
        objective=objective,
        violations=tuple(violations),
        hours_requested=instance.requested_hours,
        hours_scheduled=hours(sum(scheduled.values())),
        value_scheduled=value,
        requests=instance.num_requests,
        satisfied=len(scheduled),
        fully_satisfied=fully,
        partly_satisfied=partly,
        unsatisfied=MappingProxyType(unsatisfied),
        u_max=max(fractions),
        u_rms=math.sqrt(sum(u * u for u in fractions) / len(fractions)),
    )


__all__ = [
    "ARRAY_SEPARATOR", "OBJECTIVES", "TOLERANCE", "Antenna", "ContactEvaluation",
    "ContactInstance", "ContactSolution", "Request", "Resource", "Track", "busy", "evaluate",
    "hours",
]  # fmt: skip
