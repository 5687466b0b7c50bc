"""What every ``rota train`` run shares, whatever it trains: budget, checkpoints, resume, card.

A training folder (``RunSpec.out``) holds ``checkpoints/last.ckpt`` (Lightning's
checkpoint with the optimiser, written every few minutes and at the end, which
``--resume`` continues from), ``metrics/`` (Lightning's CSV log, one version
per run) and whatever the problem's trainer exports beside them (its model
file, its card, its cached validation references).

:func:`fit` runs one Lightning module for a wall-clock budget of its own,
also when resumed, and calls the trainer's ``export`` every few minutes, so an
interrupted run still leaves its latest weights. Routing trains through
:mod:`rota.models.train`; other families register a trainer in
:data:`FAMILY_TRAINERS`, which ``rota train --problem FAMILY`` calls as
``trainer(run, options)`` with the ``--option key=value`` pairs (values parsed as
JSON where they parse: numbers, booleans).
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import shlex
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: Trainers of the families other than routing, ``"module:function"``, imported when used.
FAMILY_TRAINERS: dict[str, str] = {
    "contacts": "rota.models.train_contacts:train",
    "placement": "rota.models.train_placement:train",
}

#: Lightning's and rl4co's advice about their own internals, not about the user's run.
LIBRARY_NOISE = (
    r".*is an instance of `nn.Module` and is already saved during checkpointing.*",
    r"Attribute 'env' removed from hparams.*",
    r".*`isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r".*`weights_only` was not set.*",
    r".*does not have many workers which may be a bottleneck.*",
)


@dataclass(kw_only=True)
class RunSpec:
    """The options of one training run that do not depend on what is trained."""

    out: Path
    #: Wall-clock seconds of this run (a resumed run gets its own budget).
    max_time: float
    #: Optimiser steps of this run at most, whichever of the two ends it first
    #: (``None``: the wall-clock budget alone); runs of a fixed length whatever the load.
    max_steps: int | None = None
    device: str = "auto"
    resume: bool = False
    #: A model file to start from: curriculum and fine-tuning.
    init: Path | None = None
    batch_size: int = 64
    epoch_size: int = 1280
    lr: float = 1e-4
    #: Where the learning rate ends: it falls from ``lr`` to this along a half cosine
    #: over the run's wall-clock budget (``None``: ``lr`` throughout).
    lr_final: float | None = None
    val_size: int = 32
    seed: int = 0
    threads: int | None = None
    #: Processes (CPU) or GPUs training together; more than one needs ``strategy="ddp"``.
    devices: int = 1
    #: ``auto`` (one process) or ``ddp``: Lightning's distributed data parallel, gloo on
    #: CPUs and NCCL on GPUs; every process takes ``batch_size`` instances a step.
    strategy: str = "auto"
    export_minutes: float = 5.0
    command: str = ""

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if not (self.max_time > 0 and np.isfinite(self.max_time)):
            raise ValueError(
                f"max_time must be a positive number of seconds, got {self.max_time!r}"
            )
        whole = isinstance(self.max_steps, int) and not isinstance(self.max_steps, bool)
        if self.max_steps is not None and not (whole and self.max_steps >= 1):
            raise ValueError(f"max_steps must be a positive integer, got {self.max_steps!r}")
        for name in ("batch_size", "epoch_size", "val_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not (self.lr > 0 and np.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.lr_final is not None and not (0 <= self.lr_final <= self.lr):
            raise ValueError(
                f"lr_final must be a number between 0 and lr ({self.lr:g}), got {self.lr_final!r}"
            )
        if not (self.export_minutes >= 0 and np.isfinite(self.export_minutes)):
            raise ValueError(  # 0 exports after every step
                f"export_minutes must be a number >= 0, got {self.export_minutes!r}"
            )
        if self.init is not None and self.resume:
            raise ValueError("--init starts a new run from a model; --resume continues one")
        if self.device not in ("auto", "cpu", "gpu"):
            raise ValueError(f"device is {self.device!r}, expected auto, cpu or gpu")
        if self.device == "gpu" and not torch.cuda.is_available():
            raise ValueError("device is 'gpu' but torch sees no CUDA device")
        if self.strategy not in ("auto", "ddp"):
            raise ValueError(f"strategy is {self.strategy!r}, expected auto or ddp")
        if int(self.devices) < 1:
            raise ValueError(f"devices must be a positive integer, got {self.devices!r}")
        if self.devices > 1 and self.strategy != "ddp":
            raise ValueError(f"devices is {self.devices}: training on several needs --strategy ddp")
        gpus = torch.cuda.device_count()
        if self.device == "gpu" and self.devices > gpus:
            raise ValueError(f"devices is {self.devices} but torch sees {gpus} CUDA device(s)")

    @property
    def last_checkpoint(self) -> Path:
        return self.out / "checkpoints" / "last.ckpt"

    def learning_rate(self, elapsed: float) -> float:
        """The learning rate after ``elapsed`` seconds of this run."""
        if self.lr_final is None:
            return self.lr
        done = min(1.0, elapsed / self.max_time)
        return self.lr_final + (self.lr - self.lr_final) * 0.5 * (1 + np.cos(np.pi * done))


@dataclass
class Fitted:
    """A finished run: the trainer, and on the first process the training record."""

    trainer: Any
    #: ``runs`` (every run so far, this one last), ``steps``, ``wall_seconds``,
    #: ``versions``; ``None`` on the other processes of a distributed run.
    record: dict | None
    #: Optimiser steps of this run alone.
    steps: int


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``30m``, ``2h`` or ``1h30m``; a clear error otherwise."""
    import re

    value = str(text).strip().lower()
    match = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", value)
    if not value or match is None or not any(match.groups()):
        raise ValueError(f"--max-time {text!r}: expected seconds or a duration like 30m, 2h, 1h30m")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = 3600 * hours + 60 * minutes + seconds
    if total <= 0:
        raise ValueError(f"--max-time {text!r}: must be positive")
    return total


def command_line() -> str:
    return shlex.join(["rota", *sys.argv[1:]])


def accelerator(device: str) -> str:
    """``gpu`` or ``cpu`` for ``auto``, ``cpu`` or ``gpu``."""
    return "gpu" if device == "gpu" or (device == "auto" and torch.cuda.is_available()) else "cpu"


def set_threads(run: RunSpec) -> None:
    if run.threads is not None:
        torch.set_num_threads(run.threads)
    elif run.devices > 1 and run.device != "gpu":
        # processes that share the cores: more threads than cores only contend
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // run.devices))


def device_name(accelerator_name: str, devices: int) -> str:
    if accelerator_name == "gpu":
        name = torch.cuda.get_device_name(0)
        return name if devices == 1 else f"{devices} x {name} (DDP)"
    threads = f"{torch.get_num_threads()} torch threads"
    if devices > 1:
        return f"CPU ({os.cpu_count()} cores, DDP: {devices} processes x {threads})"
    return f"CPU ({os.cpu_count()} cores, {threads})"


def versions(*extra: str) -> dict[str, str]:
    """Python's and the training libraries' versions (and ``extra`` packages') for the card."""
    from importlib.metadata import version

    names = ("torch", "lightning", "rl4co", "tensordict", "torchrl", *extra)
    return {"python": platform.python_version(), **{n: version(n) for n in names}}


def cached_record(path: Path, key: dict, compute: Callable[[], dict]) -> dict:
    """``compute()``'s record (validation references), kept in ``path`` beside ``key``
    and read back instead of computed while the file holds the same ``key``."""
    from rota.files import write_text

    if path.is_file():
        stored = json.loads(path.read_text())
        if all(stored.get(name) == value for name, value in key.items()):
            return stored
    record = {**key, **compute()}
    write_text(path, json.dumps(record, indent=1) + "\n")
    return record


def begin(run: RunSpec, load: Callable[[Path], Any]) -> tuple[Any | None, list[dict]]:
    """Set a run up (torch threads, its folder, seeds) and read the model it continues from.

    That is the folder's ``model.pt`` when resuming, the ``--init`` model file
    when initialising, or none; ``load`` reads a model file of the trainer's
    problem. Returns the model and its runs so far (the history :func:`fit` extends).
    """
    import lightning.pytorch as pl

    set_threads(run)
    run.out.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(run.seed, verbose=False)
    if run.resume:
        if not run.last_checkpoint.is_file() or not (run.out / "model.pt").is_file():
            raise ValueError(
                f"--resume: no checkpoint to resume in {run.out} (checkpoints/last.ckpt)"
            )
        model = load(run.out / "model.pt")
    elif run.init is not None:
        model = load(run.init)
    else:
        return None, []
    return model, list(model.training.get("runs", []))


class ValidationGap:
    """A mixin for rl4co's Lightning modules: logs ``gap_pct``, the gap (%) of the reward
    to the ``reference`` objective each validation batch carries, in the family's sense.

    Put it before the rl4co class: ``class Module(ValidationGap, REINFORCE)``.
    """

    #: The family maximises and the reward is its objective; otherwise the reward is
    #: minus a cost.
    maximise = False
    #: The metric holding the validation reward (POMO logs its best start as ``max_reward``).
    reward_metric = "reward"

    def shared_step(self, batch, batch_idx, phase, dataloader_idx=None):
        self._reference = batch.get("reference", None) if phase != "train" else None
        return super().shared_step(batch, batch_idx, phase, dataloader_idx)

    def log_metrics(self, metric_dict, phase, dataloader_idx=None):
        reference = getattr(self, "_reference", None)
        if reference is not None:
            reward = metric_dict.get(self.reward_metric, metric_dict["reward"])
            if self.maximise:
                gap = 100 * (reference - reward) / reference
            else:
                gap = 100 * (-reward / reference - 1)
            metric_dict = {**metric_dict, "gap_pct": gap.float()}
            self.on_validation_gap(gap, phase)
        return super().log_metrics(metric_dict, phase, dataloader_idx)

    def on_validation_gap(self, gap, phase: str) -> None:
        """Called with each logged gap; a module that acts on it overrides this."""


def fit(
    module,
    run: RunSpec,
    export: Callable[[Any, dict], None],
    history: list[dict],
    run_fields: dict | None = None,
    record_fields: dict | None = None,
    packages: tuple[str, ...] = (),
) -> Fitted:
    """Train ``module`` for ``run.max_time`` seconds; export its weights as it goes.

    ``history`` holds the runs of the model so far (from its model file, when
    resumed or initialised from one). ``run_fields`` go into this run's row of
    the record, ``record_fields`` into the record itself (what the card reports
    of the data and settings), and ``packages`` are versioned beside the
    training libraries. ``export`` is called on the first process every
    ``run.export_minutes`` with the module and the record so far; the caller
    exports the final weights itself.
    """
    with warnings.catch_warnings():
        for pattern in LIBRARY_NOISE:
            warnings.filterwarnings("ignore", message=pattern)
        return _fit(module, run, export, history, run_fields or {}, record_fields or {}, packages)


def _fit(
    module, run: RunSpec, export, history: list[dict], run_fields, record_fields, packages
) -> Fitted:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import Callback, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger
    from rl4co.utils.trainer import RL4COTrainer

    if run.resume and not run.last_checkpoint.is_file():
        raise ValueError(f"--resume: no checkpoint to resume in {run.out} (checkpoints/last.ckpt)")
    chosen = accelerator(run.device)
    started = time.perf_counter()
    this_run = {
        "command": run.command,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device_name(chosen, run.devices),
        "seed": run.seed,
        **run_fields,
    }

    def training_record(steps: int) -> dict:
        wall = time.perf_counter() - started
        runs = [*history, {**this_run, "wall_seconds": round(wall, 1), "steps": steps}]
        return {
            "runs": runs, "steps": sum(r["steps"] for r in runs),
            "wall_seconds": round(sum(r["wall_seconds"] for r in runs), 1),
            "versions": versions(*packages),
            "batch_size": run.batch_size, "lr": run.lr, "lr_final": run.lr_final,
            **record_fields,
        }  # fmt: skip

    class Budget(Callback):
        """Stops this run after its own wall-clock budget (or its steps), sets its learning
        rate as the budget runs down, and exports the model as it goes.

        Under DDP the first process decides and the others follow it: processes that
        stopped at different steps would wait for each other's gradients for ever, and
        processes stepping with different learning rates would drift apart.
        """

        def __init__(self):
            self.exported = time.perf_counter()
            self.first_step = 0

        def on_train_start(self, trainer, pl_module):
            self.first_step = trainer.global_step  # a resumed run starts at its checkpoint's
            # a resumed optimiser comes back with the learning rate of the run it was saved by
            self.set_learning_rate(trainer, run.learning_rate(0.0))

        def on_train_batch_end(self, trainer, pl_module, *args):
            now = time.perf_counter()
            if trainer.is_global_zero and now - self.exported >= 60 * run.export_minutes:
                export(pl_module, training_record(trainer.global_step - self.first_step))
                self.exported = now
            elapsed = trainer.strategy.broadcast(now - started)
            steps = trainer.global_step - self.first_step  # the same on every process
            out_of_steps = run.max_steps is not None and steps >= run.max_steps
            if elapsed >= run.max_time or out_of_steps:
                trainer.should_stop = True
            self.set_learning_rate(trainer, run.learning_rate(elapsed))

        @staticmethod
        def set_learning_rate(trainer, lr: float) -> None:
            for optimizer in trainer.optimizers:
                for group in optimizer.param_groups:
                    group["lr"] = lr

    budget = Budget()
    trainer = RL4COTrainer(
        accelerator=chosen, devices=run.devices, strategy=run.strategy,
        precision="32-true", max_epochs=-1,
        # rl4co's default "medium" lets float32 matmuls run in bfloat16: TF32 speed on a
        # GPU, but emulated on most CPUs, where it made a step five times slower here.
        matmul_precision="medium" if chosen == "gpu" else "highest",
        logger=CSVLogger(run.out, name="metrics", version=len(history)),
        callbacks=[
            ModelCheckpoint(dirpath=run.out / "checkpoints", save_last=True, save_top_k=0,
                            train_time_interval=timedelta(minutes=run.export_minutes)),
            budget,
        ],
        enable_model_summary=False, log_every_n_steps=1,
    )  # fmt: skip
    # RL4COTrainer.fit only adjusts manual-optimisation models and drops ``weights_only``;
    # our checkpoints hold hyperparameters beside tensors.
    pl.Trainer.fit(
        trainer,
        module,
        ckpt_path=str(run.last_checkpoint) if run.resume else None,
        weights_only=False,
    )
    trainer.save_checkpoint(run.last_checkpoint)
    steps = trainer.global_step - budget.first_step
    record = training_record(steps) if trainer.is_global_zero else None
    return Fitted(trainer, record, steps)


def learning_rate_text(record: dict) -> str:
    """The learning rate of a record's last run, as a card states it."""
    if record.get("lr_final") is None:
        return f"lr {record['lr']:g}"
    return f"lr {record['lr']:g} falling to {record['lr_final']:g} along a half cosine over the run"


def runs_table(runs: list[dict], columns: tuple[str, ...] = ()) -> list[str]:
    """The markdown table of a card: one row per run of the model, with ``columns`` of its own."""
    lines = [
        "| run | started | device | " + "".join(f"{c} | " for c in columns)
        + "wall (s) | steps | command |",
        "|---|---|---|" + "---:|" * len(columns) + "---:|---:|---|",
    ]  # fmt: skip
    for k, r in enumerate(runs, 1):
        extra = "".join(f"{r.get(c, '')} | " for c in columns)
        lines.append(
            f"| {k} | {r['started']} | {r['device']} | {extra}{r['wall_seconds']} "
            f"| {r['steps']} | `{r['command']}` |"
        )
    return lines


def family_trainer(problem: str) -> Callable[[RunSpec, dict[str, str]], dict | None]:
    """The trainer ``rota train --problem PROBLEM`` calls for a family other than routing."""
    if problem not in FAMILY_TRAINERS:
        raise ValueError(f"problem is {problem!r}: no trainer for it")
    module, _, name = FAMILY_TRAINERS[problem].partition(":")
    return getattr(importlib.import_module(module), name)
