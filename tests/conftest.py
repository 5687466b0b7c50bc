"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

#: The benchmark instances live beside the repository, not inside it.
SHARED_INSTANCES = Path(__file__).resolve().parents[1] / ".." / "shared" / "instances"


@pytest.fixture(scope="session")
def shared_instances() -> Path:
    """Path to ``../shared/instances``; skips the test when that folder is absent."""
    if not SHARED_INSTANCES.is_dir():
        pytest.skip(f"benchmark instances not found at {SHARED_INSTANCES.resolve()}")
    return SHARED_INSTANCES


def shared_file(relative: str) -> Path:
    """A file under ``../shared/instances``; skips the test when it is absent."""
    path = SHARED_INSTANCES / relative
    if not path.is_file():
        pytest.skip(f"benchmark instance not found: {path.resolve()}")
    return path
