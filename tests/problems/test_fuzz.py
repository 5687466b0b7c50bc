"""Every reader, fed mutated real files: a valid instance or one ``FormatError`` line, nothing else.

Mutations are random byte edits and token swaps (numbers for adversarial
numbers, keywords for others), on the shipped real instances of each format
and on rota's JSON formats. Whatever comes back must be a validated instance
(or solution); whatever is raised must be a one-line ``ValueError`` (a
``FormatError`` from the readers, or a ``ResourceError`` when the file asks
for more memory than there is), never another exception, and no read may
allocate beyond a bound.
"""

from __future__ import annotations

import json
import re
import tracemalloc
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rota
from rota.problems.routing import RoutingInstance, RoutingSolution

from ..conftest import TEST_INSTANCES

#: A read of a file under 100 kB may allocate at most this much.
PEAK_BYTES = 64 * 2**20

ADVERSARIAL_TOKENS = [
    "0", "-1", "1e400", "-1e400", "nan", "inf", "1e19", "9" * 40, "0.5", "", "EOF",
    "true", "null", "-0", "1e-320", "DEPOT_SECTION", "DIMENSION : 1000000000000",
    "EDGE_WEIGHT_TYPE : EXPLICIT", "{", "]", "\x00", "\u00e9",
]  # fmt: skip

FILES = {
    "vrplib": TEST_INSTANCES / "E-n13-k4.vrp",
    "tsplib": TEST_INSTANCES / "br17.atsp",
    "hfvrp": TEST_INSTANCES / "X110-HD.vrp",
    "solomon": TEST_INSTANCES / "C101.txt",
}
_TOKEN = re.compile(r"[^\s,:\[\]{}\"]+")


def _json_instance() -> str:
    instance = rota.read(TEST_INSTANCES / "E-n13-k4.vrp")
    return rota.problems.dumps_instance(instance)


def _texts() -> dict[str, str]:
    texts = {kind: path.read_text() for kind, path in FILES.items()}
    texts["json"] = _json_instance()
    return texts


TEXTS = _texts()
SOLUTIONS = {
    "sol": (TEST_INSTANCES / "E-n13-k4.sol").read_text(),
    "json-solution": json.dumps({"routes": [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]}),
}


@st.composite
def mutated(draw, text: str) -> bytes:
    """``text`` after a few random byte edits and token swaps."""
    data = bytearray(text.encode("utf-8"))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["replace", "insert", "delete", "token", "truncate"]))
        if action == "token":
            tokens = list(_TOKEN.finditer(data.decode("utf-8", errors="replace")))
            if tokens:
                match = draw(st.sampled_from(tokens))
                new = draw(st.sampled_from(ADVERSARIAL_TOKENS)).encode("utf-8")
                start, end = match.span()
                data[start:end] = new
            continue
        if not data:
            continue
        at = draw(st.integers(0, len(data) - 1))
        if action == "replace":
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        else:
            del data[at:]
    return bytes(data)


def _check(call, path: Path, data: bytes, expected: type) -> None:
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. "not a standard size"
            value = call(path)
    except ValueError as exc:  # FormatError, ResourceError, or a validation error, named
        message = str(exc)
        assert message and "\n" not in message, message
        assert str(path) in message or "needs about" in message, message
        return
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < PEAK_BYTES, f"reading {len(data)} bytes allocated {peak} bytes"
    assert isinstance(value, expected)


FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("kind", sorted(TEXTS))
def test_instance_readers_survive_mutations(kind: str, tmp_path: Path) -> None:
    @FUZZ
    @given(data=mutated(TEXTS[kind]))
    def run(data: bytes) -> None:
        _check(rota.read, tmp_path / f"mutant.{kind}", data, RoutingInstance)

    run()


@pytest.mark.parametrize("kind", sorted(SOLUTIONS))
def test_solution_readers_survive_mutations(kind: str, tmp_path: Path) -> None:
    instance = rota.read(TEST_INSTANCES / "E-n13-k4.vrp")

    @FUZZ
    @given(data=mutated(SOLUTIONS[kind]))
    def run(data: bytes) -> None:
        def read(path: Path) -> RoutingSolution:
            solution = rota.read_solution(path, instance)
            rota.evaluate(instance, solution)  # evaluating what was read must not fail either
            return solution

        _check(read, tmp_path / f"mutant.{kind}", data, RoutingSolution)

    run()
