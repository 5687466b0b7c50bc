"""The seeded MoE routing generator: deterministic, in the published ranges, shifting by batch."""

from __future__ import annotations

import numpy as np
import pytest

from rota.data.placement import generate_instance, generate_trace, gini, trace_statistics
from rota.errors import ResourceError
from rota.problems.placement.io import summarise


def test_same_arguments_same_trace():
    a = generate_trace(16, 4, 2, tokens=300, seed=5)
    b = generate_trace(16, 4, 2, tokens=300, seed=5)
    assert np.array_equal(a.experts, b.experts)
    assert not np.array_equal(a.experts, generate_trace(16, 4, 2, tokens=300, seed=6).experts)


def test_every_token_has_top_k_distinct_experts():
    trace = generate_trace(8, 5, 3, tokens=200, seed=1)
    assert trace.experts.shape == (200, 5, 3)
    ordered = np.sort(trace.experts, axis=2)
    assert (ordered[:, :, 1:] != ordered[:, :, :-1]).all()
    assert trace.experts.min() >= 0 and trace.experts.max() < 8


@pytest.mark.parametrize(("experts", "layers", "top_k"), [(8, 8, 2), (64, 4, 6)])
def test_skew_and_affinity_sit_in_the_published_ranges(experts, layers, top_k):
    trace = generate_trace(experts, layers, top_k, tokens=4096, seed=1)
    loads, flows = summarise(trace)
    stats = trace_statistics(loads, flows, top_k)
    assert 0.3 <= stats["gini_mean"] <= 0.7
    # affinity far above routing without it (top_k / E), about half of the pairs or more
    assert stats["affinity"] >= 0.45 and stats["affinity"] > 2 * top_k / experts


def test_batches_of_one_model_shift_their_domain():
    def share(batch: int, drift: float) -> np.ndarray:
        loads = summarise(generate_trace(32, 2, 2, tokens=4096, seed=3, batch=batch, drift=drift))
        return loads[0][0] / loads[0][0].sum()

    shift = np.abs(share(0, 0.5) - share(1, 0.5)).sum()
    noise = np.abs(share(0, 0.0) - share(1, 0.0)).sum()  # without drift: sampling noise only
    assert shift > 3 * noise


def test_gini_of_known_distributions():
    assert gini(np.ones(10)) == 0
    assert gini(np.array([0, 0, 0, 1])) == pytest.approx(0.75)


def test_instances_record_their_parameters():
    inst = generate_instance(8, 3, 4, 2, nodes=2, tokens=100, seed=2, batch=1)
    assert inst.name == "moe-e8-l3-k2-g4-n2-s2-b1"
    assert inst.metadata["tokens"] == 100 and inst.metadata["batch"] == 1
    assert inst.nodes == 2 and inst.top_k == 2 and inst.loads.sum() == 100 * 3 * 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"experts": 0}, r"experts is 0, expected an integer in \[1, 4096\]"),
        ({"top_k": 9}, r"top_k is 9, expected an integer in \[1, 8\]"),
        ({"persistence": 1.5}, r"persistence is 1.5, expected a number in \[0, 1\]"),
        ({"tokens": True}, "tokens is True, expected an integer"),
    ],
)
def test_bad_parameters_are_named(args, message):
    options = {"experts": 8, "layers": 2, "top_k": 2, **args}
    with pytest.raises(ValueError, match=message):
        generate_trace(**options)


def test_traces_beyond_memory_are_refused_before_allocating():
    with pytest.raises(ResourceError, match="needs about"):
        generate_trace(4096, 1024, 8, tokens=10_000_000)
