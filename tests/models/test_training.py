"""The training harness every ``rota train`` shares: budget, export, checkpoints, resume."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from rota.models.training import RunSpec, fit, parse_duration, runs_table


class Regression:
    """A one-weight least-squares fit as a Lightning module: the harness, nothing else."""

    @staticmethod
    def module(lr: float = 0.5):
        import lightning.pytorch as pl

        class Module(pl.LightningModule):
            def __init__(self):
                super().__init__()
                self.weight = torch.nn.Parameter(torch.zeros(1))
                self.lrs: list[float] = []

            def train_dataloader(self):
                generator = torch.Generator().manual_seed(0)
                x = torch.rand(64, 1, generator=generator)
                dataset = torch.utils.data.TensorDataset(x, 3 * x)
                return torch.utils.data.DataLoader(dataset, batch_size=8)

            def training_step(self, batch, batch_idx):
                x, y = batch
                loss = ((self.weight * x - y) ** 2).mean()
                self.log("loss", loss)
                self.lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])
                return loss

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=lr)

        return Module()


def test_fit_trains_for_its_budget_exports_and_resumes(tmp_path: Path):
    exported: list[dict] = []
    run = RunSpec(
        out=tmp_path, max_time=0.5, device="cpu", lr=0.5, export_minutes=0.0, command="one"
    )
    first = fit(Regression.module(), run, lambda m, r: exported.append(r), history=[],
                run_fields={"shape": "1x1"}, record_fields={"data": "x in [0, 1)"})  # fmt: skip
    assert first.steps > 0 and first.record["steps"] == first.steps
    assert first.record["data"] == "x in [0, 1)" and first.record["runs"][0]["shape"] == "1x1"
    assert exported and exported[-1]["runs"][0]["command"] == "one"
    assert run.last_checkpoint.is_file() and (tmp_path / "metrics" / "version_0").is_dir()
    assert float(first.trainer.lightning_module.weight.detach()) == pytest.approx(3, abs=0.05)

    resumed = RunSpec(out=tmp_path, max_time=0.5, device="cpu", lr=0.5, resume=True, command="two")
    second = fit(Regression.module(), resumed, lambda m, r: None, history=first.record["runs"])
    assert [r["command"] for r in second.record["runs"]] == ["one", "two"]
    assert second.record["steps"] == first.steps + second.steps
    assert second.trainer.global_step == first.steps + second.steps  # continued, not restarted
    assert (tmp_path / "metrics" / "version_1").is_dir()
    table = runs_table(second.record["runs"], columns=("shape",))
    assert len(table) == 4 and "| 1x1 |" in table[2] and "`two`" in table[3]


def test_the_learning_rate_is_the_runs_own_also_when_resumed_and_falls_to_lr_final(
    tmp_path: Path,
):
    first = RunSpec(out=tmp_path, max_time=0.3, device="cpu", lr=0.5, command="one")
    fit(Regression.module(lr=0.5), first, lambda m, r: None, history=[])
    # the restored optimiser state carries the first run's 0.5; this run asks for 0.2 to 0.02
    second = RunSpec(out=tmp_path, max_time=0.5, device="cpu", lr=0.2, lr_final=0.02, resume=True)
    module = Regression.module(lr=0.5)
    fitted = fit(module, second, lambda m, r: None, history=[{"steps": 1, "wall_seconds": 1}])
    assert module.lrs[0] == pytest.approx(0.2) and len(module.lrs) > 10
    assert all(a >= b for a, b in itertools.pairwise(module.lrs))  # it only falls
    assert fitted.trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.02)
    assert fitted.record["lr"] == 0.2 and fitted.record["lr_final"] == 0.02
    assert second.learning_rate(0.25) == pytest.approx(0.11)  # halfway down the cosine


def test_max_steps_ends_each_run_after_its_own_steps(tmp_path: Path):
    first = RunSpec(out=tmp_path, max_time=600.0, max_steps=7, device="cpu", lr=0.5)
    assert fit(Regression.module(), first, lambda m, r: None, history=[]).steps == 7
    resumed = RunSpec(out=tmp_path, max_time=600.0, max_steps=3, device="cpu", resume=True)
    second = fit(Regression.module(), resumed, lambda m, r: None, history=[])
    assert second.steps == 3 and second.trainer.global_step == 10


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_time": 0}, "max_time must be a positive number"),
        ({"max_steps": 0}, "max_steps must be a positive integer, got 0"),
        ({"max_steps": 2.5}, "max_steps must be a positive integer, got 2.5"),
        ({"max_steps": True}, "max_steps must be a positive integer, got True"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"lr": -1.0}, "lr must be a positive number"),
        ({"lr": 1e-4, "lr_final": 1e-3}, "lr_final must be a number between 0 and lr"),
        ({"export_minutes": -1.0}, "export_minutes must be a number >= 0"),
        ({"device": "tpu"}, "device is 'tpu'"),
        ({"devices": 2}, "training on several needs --strategy ddp"),
        ({"resume": True, "init": Path("m.pt")}, "--init starts a new run"),
    ],
)
def test_run_spec_refuses_bad_settings(tmp_path: Path, fields, message):
    with pytest.raises(ValueError, match=message):
        RunSpec(**{"out": tmp_path, "max_time": 1.0, **fields})


def test_resume_without_a_checkpoint_is_refused(tmp_path: Path):
    run = RunSpec(out=tmp_path, max_time=1.0, device="cpu", resume=True)
    with pytest.raises(ValueError, match="no checkpoint to resume"):
        fit(Regression.module(), run, lambda m, r: None, history=[])


def test_durations():
    assert parse_duration("1h30m") == 5400 and parse_duration("90") == 90
    with pytest.raises(ValueError, match="--max-time 'soon'"):
        parse_duration("soon")
