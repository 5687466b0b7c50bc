"""The placement family's model, evaluator and files, on hand-made cases with exact figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rota
from rota.errors import FormatError
from rota.problems import problem_of
from rota.problems.placement import (
    PLACEMENT,
    PlacementInstance,
    PlacementSolution,
    contiguous,
    evaluate,
)
from rota.problems.placement.io import (
    Trace,
    check_trace,
    instance_from_trace,
    read_trace,
    summarise,
    write_trace,
)
from rota.problems.placement.model import check_marginals


def two_layers(**options) -> PlacementInstance:
    """2 layers x 4 experts on 2 GPUs (2 slots each).

    Loads 4, 3, 2, 1 in both layers; tokens go from expert i of layer 0 to
    expert i of layer 1 (10 each), plus 2 from expert 0 to expert 3.
    """
    loads = [[4, 3, 2, 1], [4, 3, 2, 1]]
    flows = np.zeros((1, 4, 4))
    flows[0] = 10 * np.eye(4)
    flows[0, 0, 3] = 2
    return PlacementInstance(loads, flows, gpus=2, **options)


# -- the evaluator -------------------------------------------------------------------------


def test_contiguous_placement_figures():
    inst = two_layers(comm_weight=0.5)
    report = evaluate(inst, contiguous(inst))  # experts 0,1 on GPU 0 and 2,3 on GPU 1
    assert report.feasible
    assert report.load_term == 7 + 7  # GPU 0 holds 4 + 3 in both layers
    assert report.cross_gpu == 2 and report.comm_cost == 2  # only 0 -> 3 crosses
    assert report.cross_node == 0
    assert report.objective == 14 + 0.5 * 2
    assert report.imbalance == (7 / 5, 7 / 5)
    assert report.traffic.tolist() == [[20, 2], [0, 20]]


def test_balanced_placement_trades_traffic_for_load():
    inst = two_layers(comm_weight=0.5)
    # 0 and 3 together, 1 and 2 together: loads 5 and 5, and 0 -> 3 stays on GPU 0
    solution = PlacementSolution.from_array([[0, 1, 1, 0], [0, 1, 1, 0]])
    report = evaluate(inst, solution)
    assert (report.load_term, report.cross_gpu, report.objective) == (10, 0, 10)
    assert report.max_imbalance == 1.0


def test_nodes_weight_traffic_by_inverse_bandwidth():
    inst = two_layers(nodes=2, bandwidth_intra=400, bandwidth_inter=100, comm_weight=1.0)
    assert inst.inter_cost == 4 and inst.hop.tolist() == [[0, 4], [4, 0]]
    report = evaluate(inst, contiguous(inst))
    assert (report.cross_gpu, report.cross_node, report.comm_cost) == (2, 2, 8)
    assert report.objective == 14 + 8


def test_intra_node_hops_cost_one():
    loads = [[1, 1, 1, 1], [1, 1, 1, 1]]
    flows = np.zeros((1, 4, 4))
    flows[0, 0, 1] = 3  # GPU 0 -> GPU 1: same node
    flows[0, 0, 2] = 5  # GPU 0 -> GPU 2: the other node
    inst = PlacementInstance(loads, flows, gpus=4, nodes=2, comm_weight=1.0)
    report = evaluate(inst, contiguous(inst))
    assert (report.cross_gpu, report.cross_node) == (8, 5)
    assert report.comm_cost == 3 * 1 + 5 * inst.inter_cost


def test_replicas_split_load_and_flows_evenly():
    inst = two_layers(slots=3, comm_weight=1.0)
    # expert 0 of layer 0 on both GPUs: each copy computes 2 tokens and sends half its flows
    solution = PlacementSolution((((0, 1), (0,), (1,), (1,)), ((0,), (0,), (1,), (1,))))
    report = evaluate(inst, solution)
    assert report.feasible and report.replicas == 1
    assert report.gpu_load[0].tolist() == [2 + 3, 2 + 2 + 1]
    # 0 -> 0 (10) and 0 -> 3 (2): half of each leaves from GPU 1
    assert report.traffic.tolist() == [[5 + 10, 1], [5, 1 + 20]]
    assert report.cross_gpu == 6


@pytest.mark.parametrize(
    ("placement", "kind"),
    [
        ((((0,), (0,), (0,), (1,)), ((0,), (0,), (1,), (1,))), "capacity"),
        ((((0,), (), (1,), (1,)), ((0,), (0,), (1,), (1,))), "unplaced"),
        ((((0, 0), (0,), (1,), (1,)), ((0,), (0,), (1,), (1,))), "duplicate_gpu"),
        ((((0,), (0,), (1,), (2,)), ((0,), (0,), (1,), (1,))), "unknown_gpu"),
        ((((0,), (0,), (1,), (1,)),), "shape"),
        ((((0,), (0,), (1,)), ((0,), (0,), (1,), (1,))), "shape"),
    ],
)
def test_every_broken_constraint_has_a_stable_kind(placement, kind):
    report = evaluate(two_layers(), PlacementSolution(placement))
    assert kind in [v.kind for v in report.violations]
    assert not report.feasible


def test_structural_errors_refuse_only_shapes_and_unknown_gpus():
    inst = two_layers()
    over = PlacementSolution.from_array([[0, 0, 0, 1], [0, 0, 1, 1]])
    assert PLACEMENT.structural_errors(inst, over) == []  # infeasible, but a solution
    unknown = PlacementSolution.from_array([[0, 0, 1, 5], [0, 0, 1, 1]])
    assert "GPU 5" in PLACEMENT.structural_errors(inst, unknown)[0]


def test_summary_figures_for_rota_evaluate():
    inst = two_layers(comm_weight=0.5)
    figures = PLACEMENT.summary(evaluate(inst, contiguous(inst)))
    assert figures["objective"] == 15 and figures["cross-GPU"] == 2
    assert figures["max imbalance"] == 1.4 and figures["replicas"] == 0


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"flows": np.zeros((1, 4, 3))}, r"flows has shape \(1, 4, 3\), expected \(1, 4, 4\)"),
        ({"loads": [[4, -3, 2, 1], [4, 3, 2, 1]]}, r"loads\[0\]\[1\] is -3.0"),
        ({"gpus": 1, "slots": 3}, "4 experts per layer do not fit on 1 GPUs x 3 slots"),
        ({"slots": 1}, "4 experts per layer do not fit on 2 GPUs x 1 slots"),
        ({"gpus": 3, "nodes": 2}, "gpus is 3, not a multiple of nodes 2"),
        ({"top_k": 5}, "top_k is 5, more than the 4 experts"),
        ({"bandwidth_inter": 900.0}, "bandwidth_inter 900 is above bandwidth_intra 450"),
        ({"comm_weight": float("nan")}, "comm_weight is nan"),
        ({"loads": [[4, True, 2, 1], [4, 3, 2, 1]]}, r"loads\[0\]\[1\] is a boolean"),
    ],
)
def test_bad_instances_are_refused_naming_the_field(change, message):
    fields = {"loads": [[4, 3, 2, 1], [4, 3, 2, 1]], "flows": np.zeros((1, 4, 4)), "gpus": 2}
    fields.update(change)
    with pytest.raises(ValueError, match=message):
        PlacementInstance(**fields)


def test_instances_are_immutable():
    inst = two_layers()
    with pytest.raises(ValueError):
        inst.loads[0, 0] = 99
    with pytest.raises(AttributeError):
        inst.gpus = 4


def test_marginals_that_disagree_are_reported(tmp_path: Path):
    inst = two_layers()  # expert 0 sends 12 but has load 4 with top_k 1
    assert "flows out of layer 0 expert 0 sum to 12" in check_marginals(inst)[0]
    rota.write_instance(inst, tmp_path / "p.json")
    with pytest.warns(UserWarning, match="sum to 12, but top_k x its load is 4"):
        rota.read(tmp_path / "p.json")


# -- files ---------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*are loads and flows from one trace")
def test_instance_and_solution_json_round_trip(tmp_path: Path):
    inst = two_layers(nodes=2, comm_weight=0.25, name="tiny", metadata={"source": "test"})
    rota.write_instance(inst, tmp_path / "p.json")
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["format"] == "rota.placement/1" and data["loads"][0] == [4, 3, 2, 1]
    back = rota.read(tmp_path / "p.json")
    assert problem_of(back) is PLACEMENT and back.name == "tiny"
    assert np.array_equal(back.flows, inst.flows) and back.comm_weight == 0.25
    assert back.nodes == 2 and back.metadata["source"] == "test"
    solution = PlacementSolution((((0, 1), (0,), (1,), (1,)), ((0,), (0,), (1,), (1,))))
    rota.write_solution(solution, tmp_path / "s.json", back)
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["placement"][0] == [[0, 1], 0, 1, 1] and saved["instance"] == "tiny"
    assert rota.read_solution(tmp_path / "s.json", back) == solution


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("gpus"), "field 'gpus' is missing"),
        (lambda d: d.update(gpus="four"), "gpus is 'four'"),
        (lambda d: d.update(colour=1), "unknown field 'colour'"),
        (lambda d: d.update(loads=[[1, 2, 3, 4]]), r"flows has shape \(1, 4, 4\), expected"),
    ],
)
def test_bad_instance_files_give_one_line(tmp_path: Path, edit, message):
    data = PLACEMENT.instance_to_dict(two_layers())
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match=message) as error:
        rota.read(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_bad_solution_files_name_the_entry(tmp_path: Path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"placement": [[0, 0, 1, True], [0, 0, 1, 1]]}))
    with pytest.raises(FormatError, match=r"placement\[0\]\[3\] is True"):
        rota.read_solution(path, two_layers())


TRACE = np.array(
    [  # 3 tokens x 2 layers, top-2
        [[0, 1], [0, 3]],
        [[0, 2], [1, 3]],
        [[3, 1], [0, 1]],
    ]
)


def test_a_trace_summarises_into_counts():
    loads, flows = summarise(Trace(TRACE, 4))
    assert loads.tolist() == [[2, 2, 1, 1], [2, 2, 0, 2]]
    # token 0: {0,1} -> {0,3}; token 1: {0,2} -> {1,3}; token 2: {3,1} -> {0,1}
    expected = np.zeros((4, 4))
    for before, after in (([0, 1], [0, 3]), ([0, 2], [1, 3]), ([3, 1], [0, 1])):
        for i in before:
            for j in after:
                expected[i, j] += 1
    assert np.array_equal(flows[0], expected)
    assert flows.sum() == 3 * 2 * 2
    inst = instance_from_trace(Trace(TRACE, 4), gpus=2)
    assert inst.top_k == 2 and check_marginals(inst) == []


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_trace_files_round_trip_to_the_same_summary(tmp_path: Path, suffix: str):
    path = tmp_path / f"trace{suffix}"
    write_trace(Trace(TRACE, 5), path)
    back = read_trace(path, num_experts=5 if suffix == ".csv" else None)
    assert back.num_experts == 5 and np.array_equal(back.experts, TRACE)
    for a, b in zip(summarise(back), summarise(Trace(TRACE, 5)), strict=True):
        assert np.array_equal(a, b)


def test_csv_traces_take_any_token_ids_and_row_order(tmp_path: Path):
    rows = ["token,layer,expert", "7,1,2", "7,0,1", "3,0,0", "3,1,1", "7,0,0", "7,1,0", "3,0,2",
            "3,1,2"]  # fmt: skip
    path = tmp_path / "t.csv"
    path.write_text("\n".join(rows) + "\n")
    trace = read_trace(path)
    assert trace.experts.shape == (2, 2, 2) and trace.num_experts == 3
    loads, _ = summarise(trace)
    assert loads.tolist() == [[2, 1, 1], [1, 1, 2]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("token,layer,expert\n0,0,1\n0,0,2\n0,1,1\n", "token 0 has 1 experts in layer 1"),
        ("token,layer,expert\n0,0,1\n0,1,x\n", "t.csv: "),
        ("tok,lay,exp\n0,0,1\n", "line 1: expected the header"),
        ("token,layer,expert\n0,0,1\n0,0,1\n", "routed to expert 1 twice in layer 0"),
        ("token,layer,expert\n0,0,-1\n", "expert id -1 < 0"),
    ],
)
def test_bad_csv_traces_give_one_line(tmp_path: Path, text: str, message: str):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(FormatError, match=message) as error:
        read_trace(path)
    assert "\n" not in str(error.value)


def test_trace_ids_beyond_the_model_are_refused():
    with pytest.raises(FormatError, match="expert id 3, but the model has 3 experts"):
        check_trace(TRACE, 3, "trace")


def test_a_trace_is_not_an_instance(tmp_path: Path):
    path = tmp_path / "t.csv"
    write_trace(Trace(TRACE, 4), path)
    with pytest.raises(FormatError, match="rota data placement --trace"):
        rota.read(path)


def test_a_broken_npz_is_one_line(tmp_path: Path):
    path = tmp_path / "t.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(FormatError, match="not a readable .npz trace"):
        read_trace(path)
