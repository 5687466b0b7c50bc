"""The notebooks are committed without outputs, and each is listed in notebooks/README.md.

Running them is pytest's job too: ``--nbmake`` (pyproject's ``addopts``) executes
every notebook under ``notebooks/`` (a ``testpaths`` entry) top to bottom in a
fresh kernel. These checks keep the committed files diffable: outputs (images,
timings, paths of a temporary folder) change on every run and would bury the
code in noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_the_six_notebooks_are_there():
    assert [p.stem for p in PATHS] == [
        "01-quickstart", "02-real-roads", "03-training", "04-benchmarking",
        "05-contact-scheduling", "06-expert-placement",
    ]  # fmt: skip


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path: Path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for k, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        assert cell.get("outputs") == [], (
            f"{path.name}: cell {k} has outputs; clear them before committing "
            "(Jupyter: Edit > Clear Outputs of All Cells)"
        )
        assert cell.get("execution_count") is None, f"{path.name}: cell {k} has an execution count"
    # The kernel is named, not pinned to one machine's environment: `python3` resolves
    # to the interpreter running pytest (jupyter_client maps a kernel's "python" to it).
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_is_listed_in_the_readme(path: Path):
    assert f"]({path.name})" in (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
