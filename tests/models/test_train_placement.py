"""``rota train --problem placement``: options, a short run, its model file and card."""

from __future__ import annotations

import json

import pytest

import rota
from rota.data.placement import generate_instance
from rota.models.placement import load_model
from rota.models.train_placement import DEFAULTS, parse_options, train
from rota.models.training import RunSpec, family_trainer


def test_options_are_parsed_and_bad_ones_named():
    assert parse_options({}) == DEFAULTS
    parsed = parse_options({"experts": "16", "reference_time": 0.5, "layers": 4})
    assert parsed["experts"] == 16 and parsed["reference_time"] == 0.5 and parsed["layers"] == 4
    with pytest.raises(ValueError, match="unknown placement training option.* colour, depth;"):
        parse_options({"colour": 1, "depth": 2})
    with pytest.raises(ValueError, match="option gpus=2.5 must be a positive integer"):
        parse_options({"gpus": 2.5})
    with pytest.raises(ValueError, match="option tokens='many' is not a number"):
        parse_options({"tokens": "many"})
    with pytest.raises(ValueError, match="option samples=1 must be at least 2"):
        parse_options({"samples": 1})


def test_a_short_run_leaves_a_model_the_solver_loads(tmp_path):
    assert family_trainer("placement") is train
    run = RunSpec(out=tmp_path, max_time=2.0, batch_size=2, epoch_size=2, val_size=2,
                  threads=1, export_minutes=60.0)  # fmt: skip
    options = {"experts": 4, "layers": 2, "gpus": 2, "nodes": 1, "top_k": 1, "tokens": 64,
               "samples": 2, "reference_time": 0.2, "hidden": 8, "blocks": 1}  # fmt: skip
    record = train(run, options)
    assert record["steps"] >= 1 and record["reference"] == "ga at 0.2 s per instance"
    # one step per epoch, each followed by validation: the best one's weights are kept
    assert 1 <= record["selected"]["step"] <= record["steps"]
    assert set(record["validation"]) == {"greedy", "sampling", "both"}
    for figures in record["validation"].values():
        assert figures["gap_pct"] > -50 and figures["seconds_per_instance"] > 0
    references = json.loads((tmp_path / "validation.json").read_text())
    assert references["solver"] == "ga" and len(references["objectives"]) == 2
    card = (tmp_path / "card.md").read_text()
    assert "| greedy |" in card and "4x2x2" in card
    model = load_model(tmp_path / "model.pt")
    assert model.training["validation"] == record["validation"]
    inst = generate_instance(6, 3, 3, 2, seed=1, tokens=128)
    result = rota.solve(inst, solver="neural", time_limit=5, model=str(tmp_path / "model.pt"))
    assert result.status is rota.Status.FEASIBLE and result.evaluation.feasible
