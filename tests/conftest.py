"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

#: The benchmark instances live beside the repository, not inside it.
SHARED_INSTANCES = Path(__file__).resolve().parents[1] / ".." / "shared" / "instances"
#: The few instances the tests need, shipped with them (see the README there).
TEST_INSTANCES = Path(__file__).resolve().parent / "data" / "instances"


@pytest.fixture(scope="session")
def shared_instances() -> Path:
    """Path to ``../shared/instances``; skips the test when that folder is absent."""
    if not SHARED_INSTANCES.is_dir():
        pytest.skip(f"benchmark instances not found at {SHARED_INSTANCES.resolve()}")
    return SHARED_INSTANCES


def instance_file(name: str) -> Path:
    """A shipped test instance, by file name."""
    path = TEST_INSTANCES / name
    assert path.is_file(), f"test instance {name} is not shipped in {TEST_INSTANCES}"
    return path
