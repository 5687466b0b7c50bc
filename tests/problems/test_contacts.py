"""The contact-scheduling family: model validation, evaluator, formats and files."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import rota
from rota.errors import FormatError
from rota.problems import problem_of
from rota.problems.contacts import (
    CONTACTS,
    Antenna,
    ContactInstance,
    ContactSolution,
    Request,
    Resource,
    Track,
    evaluate,
)
from rota.problems.contacts.io.satnet import read_week
from tests.conftest import instance_file

from .contacts_cases import network

HOUR = 3600.0
SHARED_DSN = Path(__file__).resolve().parents[2] / ".." / "shared" / "satellites" / "dsn"


def kinds(instance: ContactInstance, *tracks: Track) -> list[str]:
    return [v.kind for v in evaluate(instance, ContactSolution(tracks)).violations]


# -- the evaluator ------------------------------------------------------------------------


def test_a_feasible_schedule_and_its_figures():
    inst = network()
    tracks = (
        Track("a", "DSS-34", 1 * HOUR, 3 * HOUR),  # busy 0.5 .. 3.25 h
        Track("b", "DSS-54", 8 * HOUR, 10 * HOUR - 900),  # ends with its teardown at maintenance
        Track("c", "DSS-35", 4 * HOUR, 5 * HOUR),  # M1 again, after a
    )
    # b is 2.75 h long: below its minimum of 3 h
    assert kinds(inst, *tracks) == ["duration"]
    tracks = (tracks[0], Track("b", "DSS-54", 6.5 * HOUR, 9.5 * HOUR), tracks[2])
    assert kinds(inst, *tracks) == ["view_period"]  # b's view period on DSS-54 opens at 8 h
    report = evaluate(inst, ContactSolution((tracks[0], tracks[2])))
    assert report.feasible
    assert report.objective == pytest.approx(3.0) and report.hours_scheduled == pytest.approx(3.0)
    assert (report.requests, report.satisfied, report.fully_satisfied, report.partly_satisfied) == (
        3, 2, 2, 0,
    )  # fmt: skip
    # M1 asked 3 h and got 3; M2 asked 3 and got nothing
    assert dict(report.unsatisfied) == {"M1": 0.0, "M2": 1.0}
    assert report.u_max == 1.0 and report.u_rms == pytest.approx(math.sqrt(0.5))
    assert report.hours_unsatisfied == pytest.approx(3.0)


def test_a_partly_satisfied_request_counts_its_hours():
    inst = network()
    report = evaluate(inst, ContactSolution((Track("a", "DSS-34", 0, 1.5 * HOUR),)))
    assert report.feasible and (report.fully_satisfied, report.partly_satisfied) == (0, 1)
    assert report.unsatisfied["M1"] == pytest.approx(1 - 1.5 / 3)


def test_setup_and_teardown_keep_tracks_apart_on_an_antenna():
    inst = network()
    a = Track("a", "DSS-34", 1 * HOUR, 3 * HOUR)  # teardown until 3.25 h
    # the array's setup (1 h) starts at 3.2 h: inside a's teardown on DSS-34
    b = Track("b", "DSS-34_DSS-35", 4.2 * HOUR, 7.2 * HOUR)
    assert kinds(inst, a, b) == ["antenna_overlap"]
    b = Track("b", "DSS-34_DSS-35", 4.25 * HOUR, 7.25 * HOUR)  # setup starts as teardown ends
    assert kinds(inst, a, b) == []


def test_an_array_uses_each_of_its_antennas():
    inst = network()
    array = Track("b", "DSS-34_DSS-35", 3 * HOUR, 6 * HOUR)
    # c on DSS-35 alone clashes with the array's use of DSS-35
    assert kinds(inst, array, Track("c", "DSS-35", 4 * HOUR, 5 * HOUR)) == ["antenna_overlap"]
    assert kinds(inst, array, Track("c", "DSS-35", 7 * HOUR, 8 * HOUR)) == []


def test_maintenance_blocks_the_busy_interval():
    inst = network()
    # the track ends at 10 h, its teardown runs into maintenance 10 .. 12 h
    b = Track("b", "DSS-54", 9 * HOUR - 1, 10 * HOUR - 1)
    assert "maintenance" in kinds(inst, replace(b, start=7 * HOUR, end=10 * HOUR))
    assert kinds(inst, Track("b", "DSS-54", 13 * HOUR, 16 * HOUR)) == []


def test_a_track_outside_its_view_period_or_window():
    inst = network()
    assert kinds(inst, Track("a", "DSS-34", 4 * HOUR, 6 * HOUR)) == ["view_period"]  # gap 5..6 h
    assert kinds(inst, Track("a", "DSS-34", 9 * HOUR, 11 * HOUR)) == ["window", "view_period"]


def test_one_link_per_spacecraft_with_its_mode_switch():
    inst = replace(network(), mode_switch=600)
    a = Track("a", "DSS-34", 1 * HOUR, 3 * HOUR)
    assert kinds(inst, a, Track("c", "DSS-35", 2 * HOUR, 3 * HOUR)) == ["spacecraft_overlap"]
    assert kinds(inst, a, Track("c", "DSS-35", 3 * HOUR + 300, 4 * HOUR + 300)) == [
        "spacecraft_overlap"
    ]
    assert kinds(inst, a, Track("c", "DSS-35", 3 * HOUR + 600, 4 * HOUR + 600)) == []


def test_unknown_and_repeated_requests_and_resources():
    inst = network()
    found = kinds(
        inst,
        Track("zz", "DSS-34", 0, HOUR),
        Track("c", "DSS-34", 0, HOUR),
        Track("a", "DSS-34", 1 * HOUR, 3 * HOUR),
        Track("a", "DSS-34", 7 * HOUR, 9 * HOUR),
    )
    assert found == ["unknown_request", "unknown_resource", "repeated_request"]
    errors = CONTACTS.structural_errors(inst, ContactSolution((Track("zz", "DSS-34", 0, 1),)))
    assert errors == ["track 0 names unknown request 'zz'"]


def test_the_value_objective():
    inst = network("value")
    report = evaluate(inst, ContactSolution((Track("a", "DSS-34", 0, HOUR),)))
    assert report.objective == 2.0 and report.value_scheduled == 2.0
    assert CONTACTS.kind(inst) == "value" and CONTACTS.sense is rota.Sense.MAX


def test_summary_names_the_operators_figures():
    report = evaluate(network(), ContactSolution(()))
    assert list(CONTACTS.summary(report)) == [
        "objective", "hours scheduled", "hours unsatisfied", "requests", "satisfied", "fully",
        "partly", "U_max", "U_rms",
    ]  # fmt: skip


# -- validation -----------------------------------------------------------------------------


def _request(**changes):
    base = {
        "id": "r", "mission": "m", "duration": 3600.0, "min_duration": 1800.0,
        "window": (0.0, 7200.0), "resources": (Resource(("A",), ((0.0, 7200.0),)),),
    }  # fmt: skip
    base.update(changes)
    return Request(**base)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"min_duration": 4000.0}, "request 'r': field 'min_duration' is 4000 s, more than"),
        ({"duration": 9000.0, "min_duration": 9000.0}, "9000 s, longer than its window"),
        ({"window": (-5.0, 7200.0)}, "field 'window start' must be non-negative, got -5"),
        ({"window": (100.0, 50.0)}, "field 'window' is [100, 50]: start must be < end"),
        ({"setup": -1.0}, "field 'setup' must be non-negative, got -1"),
        ({"duration": float("nan")}, "field 'duration' must be finite"),
        ({"duration": True}, "field 'duration' must be a number, got True"),
        ({"resources": (Resource(("Z",), ()),)}, "resources[0] uses unknown antenna 'Z'"),
        ({"resources": (Resource(("A", "A"), ()),)}, "lists an antenna twice"),
        ({"resources": ()}, "field 'resources' is empty"),
        ({"resources": (Resource(("A",), ((5.0, 1.0),)),)}, "view_periods[0]' is [5, 1]"),
    ],
)  # fmt: skip
def test_invalid_requests_are_named_in_one_line(changes, message):
    with pytest.raises(ValueError) as err:
        ContactInstance((Antenna("A"),), (_request(**changes),))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_invalid_instances_are_named():
    with pytest.raises(ValueError, match="request 'r' is listed twice"):
        ContactInstance((Antenna("A"),), (_request(), _request()))
    with pytest.raises(ValueError, match="antenna 'A' is listed twice"):
        ContactInstance((Antenna("A"), Antenna("A")), (_request(),))
    with pytest.raises(ValueError, match="field 'objective' is 'cost'"):
        ContactInstance((Antenna("A"),), (_request(),), objective="cost")
    with pytest.raises(ValueError, match="antenna 'A': field 'maintenance\\[0\\] start'"):
        ContactInstance((Antenna("A", maintenance=((-1.0, 5.0),)),), (_request(),))
    with pytest.raises(ValueError, match="field 'start' must be finite"):
        Track("r", "A", float("inf"), 1.0)


def test_instances_are_immutable():
    inst = network()
    with pytest.raises(AttributeError):
        inst.objective = "value"
    with pytest.raises(TypeError):
        inst.metadata["x"] = 1


# -- rota JSON --------------------------------------------------------------------------------


def test_instance_and_solution_round_trip(tmp_path: Path):
    inst = replace(network("value"), mode_switch=120, metadata={"source": "test"})
    rota.write_instance(inst, tmp_path / "n.json")
    back = rota.read(tmp_path / "n.json")
    assert isinstance(back, ContactInstance) and problem_of(back) is CONTACTS
    assert back.requests == inst.requests and back.antennas == inst.antennas
    assert (back.objective, back.mode_switch, dict(back.metadata)) == (
        "value",
        120,
        {"source": "test"},
    )
    solution = ContactSolution((Track("a", "DSS-34", 1 * HOUR, 2.5 * HOUR),))
    rota.write_solution(solution, tmp_path / "s.json", inst)
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["format"] == "rota.contacts.solution/1" and data["instance"] == "network"
    assert rota.read_solution(tmp_path / "s.json", inst) == solution
    assert rota.read_solution(tmp_path / "s.json") == solution  # the tag names the family


def test_result_files_hold_a_schedule(tmp_path: Path):
    inst = network()
    result = rota.solve(inst, solver="greedy")
    rota.write(result, tmp_path / "r.json", inst)
    assert json.loads((tmp_path / "r.json").read_text())["problem"] == "contacts"
    assert rota.read_solution(tmp_path / "r.json", inst) == result.solution
    assert rota.read_result(tmp_path / "r.json").objective == pytest.approx(result.objective)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(extra=1), "unknown field 'extra'"),
        (lambda d: d["requests"][0].pop("window"), "requests[0]: missing field 'window'"),
        (lambda d: d["requests"][0].update(duration="2h"), "field 'duration' must be a number"),
        (lambda d: d["antennas"][0].update(maintenance=[[5]]), "must be a [start, end] pair"),
        (lambda d: d["requests"][0]["resources"][0].update(antennas=[["x"]]), "is not a name"),
        (lambda d: d.update(requests={}), "field 'requests' must be a list"),
    ],
)  # fmt: skip
def test_bad_json_instances_give_one_line(tmp_path: Path, edit, message):
    data = CONTACTS.instance_to_dict(network())
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError) as err:
        rota.read(path)
    assert message in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_json_solutions_give_one_line(tmp_path: Path):
    path = tmp_path / "s.json"
    path.write_text(
        json.dumps({"format": "rota.contacts.solution/1", "tracks": [{"request": "a"}]})
    )
    with pytest.raises(FormatError, match="tracks\\[0\\]: missing field 'end'"):
        rota.read_solution(path, network())
    path.write_text(json.dumps({"format": "rota.contacts.solution/1", "tracks": [
        {"request": "a", "resource": "DSS-34", "start": "x", "end": 1}]}))  # fmt: skip
    with pytest.raises(FormatError, match="field 'start' must be a number"):
        rota.read_solution(path, network())


# -- SatNet weeks -------------------------------------------------------------------------------


def test_a_satnet_week_reads_with_its_maintenance():
    path = instance_file("W10_2018_2days.json")
    assert rota.problems.sniff(path) == "satnet"
    inst = rota.read(path)
    assert isinstance(inst, ContactInstance) and inst.name == "W10_2018"
    assert inst.num_requests == 31 and inst.has_arrays
    first = inst.requests[0]
    assert first.mission == "521" and first.duration == 3.5 * HOUR
    assert (first.setup, first.teardown) == (3600.0, 900.0)
    # the maintenance file is found by the week's name beside the file
    assert inst.metadata["maintenance"].endswith("W10_2018_maintenance.csv")
    dss14 = inst.antennas[inst.antenna_index["DSS-14"]]
    assert dss14.station == "Goldstone" and (1520299200.0, 1520328000.0) in dss14.maintenance
    assert inst.antennas[inst.antenna_index["DSS-34"]].station == "Canberra"


def test_a_week_file_is_sniffed_by_content_and_other_weeks_read_alike(tmp_path: Path):
    week = json.loads(instance_file("W10_2018_2days.json").read_text())["W10_2018"][:3]
    for request in week:
        request["week"], request["year"] = 52, 2030
    path = tmp_path / "anything.txt"
    path.write_text(json.dumps({"W52_2030": week}, indent=2))
    inst = rota.read(path)
    assert inst.name == "W52_2030" and inst.num_requests == 3
    assert all(not a.maintenance for a in inst.antennas)  # no maintenance file beside it
    # a duration of 5.3 h is 19080 whole seconds, not 19080.000000000004
    week[0]["duration"] = week[0]["duration_min"] = 5.3
    path.write_text(json.dumps({"W52_2030": week}))
    assert read_week(path).requests[0].duration == 19080.0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda w: w[1].pop("duration_min"), "[1] (af11d2ea-21-1): missing field 'duration_min'"),
        (lambda w: w[0].update(duration="long"), "field 'duration' must be a number, got 'long'"),
        (lambda w: w[0].update(duration_min=99), "field 'min_duration' is 356400 s, more than"),
        (lambda w: w[0].update(resources="DSS-14"), "must be a list of antenna-name lists"),
        (lambda w: w[0]["resource_vp_dict"]["DSS-34"][0].pop("TRX OFF"),
         "resource_vp_dict['DSS-34'][0]: expected an object with 'TRX ON' and 'TRX OFF'"),
    ],
)  # fmt: skip
def test_bad_satnet_weeks_give_one_line(tmp_path: Path, edit, message):
    data = json.loads(instance_file("W10_2018_2days.json").read_text())
    edit(data["W10_2018"])
    path = tmp_path / "W10_2018.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError) as err:
        rota.read(path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_file_of_several_weeks_is_refused(tmp_path: Path):
    week = json.loads(instance_file("W10_2018_2days.json").read_text())["W10_2018"][:2]
    path = tmp_path / "problems.json"
    path.write_text(json.dumps({"W10_2018": week, "W11_2018": week}))
    assert rota.problems.sniff(path) == "satnet"
    with pytest.raises(FormatError, match="holds 2 keys; split it into one file per week"):
        rota.read(path)


def test_bad_maintenance_lines_are_named(tmp_path: Path):
    shutil.copy(instance_file("W10_2018_2days.json"), tmp_path / "W10_2018.json")
    (tmp_path / "W10_2018_maintenance.csv").write_text(
        "week,year,starttime,endtime,antenna\n10.0,2018,1520299200,soon,DSS-14\n"
    )
    with pytest.raises(FormatError, match="W10_2018_maintenance.csv: line 2: starttime/endtime"):
        rota.read(tmp_path / "W10_2018.json")


@pytest.mark.parametrize(("week", "requests", "hours"), [("W10_2018", 257, 1191.5),
                                                          ("W20_2018", 294, 1406.5)])  # fmt: skip
def test_the_published_dsn_weeks(week, requests, hours):
    path = SHARED_DSN / f"{week}.json"
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    inst = rota.read(path)
    assert inst.num_requests == requests and inst.requested_hours == pytest.approx(hours)
    assert sum(len(a.maintenance) for a in inst.antennas) > 0
