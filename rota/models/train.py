"""``rota train``: POMO training of the RRNCO-style policy with Lightning, on rota's data.

One training folder (``--out``) holds everything a run leaves and a resumed
run needs:

``checkpoints/last.ckpt``
    Lightning's checkpoint (optimiser included), written every few minutes
    and at the end; ``--resume`` continues from it.
``model.pt``
    the model file the ``neural`` solver loads (:mod:`rota.models.checkpoint`),
    written every few minutes and at the end, so an interrupted run still
    leaves its latest weights.
``metrics/``
    Lightning's CSV log: loss and reward per step, validation reward and gap
    per epoch.
``validation.json``
    the fixed validation set's PyVRP reference costs, computed once.
``card.md``
    what the model is: the commands, data, hardware and wall time of every
    run so far, library versions and the validation gap with each decoding.

Training data come from :func:`rota.data.generate` (the ``train`` area of a
city, or the unit square for ``cvrp``); validation instances from the
spatially held-out ``test`` area (for ``cvrp``, another seed). Each run gets
its own wall-clock budget (``max_time``), also when resumed.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rota.envs.routing import InstanceGenerator, make_env, to_tensordict
from rota.files import write_text
from rota.models.checkpoint import NeuralModel, decode, load_model, save_model
from rota.models.rrnco import ModelConfig, build_policy

#: Seed of the validation instances (the test sets use others).
VALIDATION_SEED = 10_000
CITY_PROBLEMS = ("atsp", "acvrp", "acvrptw")


@dataclass
class TrainSpec:
    """Everything ``rota train`` needs; see :func:`train`."""

    problem: str
    nodes: int
    out: Path
    max_time: float
    city: Path | None = None
    device: str = "auto"
    resume: bool = False
    #: A model file to start from (same problem, any size): curriculum and fine-tuning.
    init: Path | None = None
    batch_size: int = 64
    #: POMO starts per training instance (``None``: every client). Fewer starts and
    #: more instances per step cost the same and suit a CPU better.
    starts: int | None = None
    epoch_size: int = 1280
    lr: float = 1e-4
    val_size: int = 32
    reference_time: float = 2.0
    seed: int = 0
    threads: int | None = None
    #: Processes (CPU) or GPUs training together; more than one needs ``strategy="ddp"``.
    devices: int = 1
    #: ``auto`` (one process) or ``ddp``: Lightning's distributed data parallel, gloo on
    #: CPUs and NCCL on GPUs; every process takes ``batch_size`` instances a step.
    strategy: str = "auto"
    export_minutes: float = 5.0
    config: ModelConfig = field(default_factory=ModelConfig)
    command: str = ""

    def __post_init__(self) -> None:
        if self.problem not in ("atsp", "acvrp", "acvrptw", "cvrp"):
            raise ValueError(
                f"problem is {self.problem!r}, expected one of atsp, acvrp, acvrptw, cvrp"
            )
        if self.problem in CITY_PROBLEMS and self.city is None:
            raise ValueError(f"problem {self.problem!r} trains on a city: give --city CITY.npz")
        if self.problem == "cvrp" and self.city is not None:
            raise ValueError("problem 'cvrp' is Euclidean: it takes no --city")
        if not (self.max_time > 0 and np.isfinite(self.max_time)):
            raise ValueError(
                f"max_time must be a positive number of seconds, got {self.max_time!r}"
            )
        clients = self.nodes - 1 if self.problem == "atsp" else self.nodes
        if self.starts is not None and not 2 <= int(self.starts) <= clients:
            raise ValueError(f"starts must be between 2 and {clients}, got {self.starts!r}")
        for name in ("nodes", "batch_size", "epoch_size", "val_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
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


def _map_area(city, area: str) -> dict[str, Any]:
    """:func:`rota.data.generate` options for one area of the city (none without a city)."""
    return {"city": city, "area": area} if city is not None else {}


def validation_instances(spec: TrainSpec, city) -> list:
    from rota.data import generate

    options = _map_area(city, "test")
    return list(generate(spec.problem, spec.val_size, spec.nodes, VALIDATION_SEED, **options))


def validation_references(spec: TrainSpec, instances: list) -> np.ndarray:
    """PyVRP's cost of each validation instance, solved once and kept in ``validation.json``."""
    import rota

    path = spec.out / "validation.json"
    names = [inst.name for inst in instances]
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored.get("names") == names:
            return np.asarray(stored["costs"], dtype=float)
    costs = []
    for inst in instances:
        result = rota.solve(inst, solver="pyvrp", time_limit=spec.reference_time, seed=0)
        if result.objective is None:
            raise RuntimeError(f"pyvrp found no solution for validation instance {inst.name}")
        costs.append(float(result.objective))
    record = {"solver": "pyvrp", "time_limit": spec.reference_time, "seed": 0,
              "names": names, "costs": costs}  # fmt: skip
    write_text(path, json.dumps(record, indent=1) + "\n")
    return np.asarray(costs)


def _pomo_class():
    from rl4co.models.zoo.pomo import POMO

    class GapPOMO(POMO):
        """POMO that also logs the validation gap to the references in the batch."""

        def shared_step(self, batch, batch_idx, phase, dataloader_idx=None):
            self._reference = batch.get("reference", None) if phase != "train" else None
            return super().shared_step(batch, batch_idx, phase, dataloader_idx)

        def log_metrics(self, metric_dict, phase, dataloader_idx=None):
            reference = getattr(self, "_reference", None)
            if reference is not None:
                reward = metric_dict.get("max_reward", metric_dict["reward"])
                metric_dict = {**metric_dict, "gap_pct": 100 * (-reward / reference - 1)}
            return super().log_metrics(metric_dict, phase, dataloader_idx)

    return GapPOMO


def _device_name(accelerator: str, devices: int) -> str:
    if accelerator == "gpu":
        name = torch.cuda.get_device_name(0)
        return name if devices == 1 else f"{devices} x {name} (DDP)"
    threads = f"{torch.get_num_threads()} torch threads"
    if devices > 1:
        return f"CPU ({os.cpu_count()} cores, DDP: {devices} processes x {threads})"
    return f"CPU ({os.cpu_count()} cores, {threads})"


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("torch", "lightning", "rl4co", "tensordict", "torchrl", "pyvrp")
    return {"python": platform.python_version(), **{n: version(n) for n in names}}


def evaluate_decodings(model: NeuralModel, instances: list, references: np.ndarray) -> dict:
    """Mean gap (%) to the references and decode time with each decoding."""
    figures = {}
    for name, decoding, augment in (
        ("greedy", "greedy", 1),
        ("multistart", "multistart", 1),
        ("multistart x8", "multistart", 8),
    ):
        started = time.perf_counter()
        best = decode(model, instances, decoding=decoding, augment=augment)
        seconds = time.perf_counter() - started
        costs = np.array([cost for _, cost in best])
        figures[name] = {
            "gap_pct": float(np.mean(100 * (costs / references - 1))),
            "seconds_per_instance": seconds / len(instances),
        }
    return figures


#: Lightning's and rl4co's advice about their own internals, not about the user's run.
_LIBRARY_NOISE = (
    r".*is an instance of `nn.Module` and is already saved during checkpointing.*",
    r"Attribute 'env' removed from hparams.*",
    r".*`isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r".*`weights_only` was not set.*",
    r".*does not have many workers which may be a bottleneck.*",
)


def train(spec: TrainSpec) -> dict | None:
    """Train (or resume), export ``model.pt``, write the card; returns the card's figures.

    Under ``strategy="ddp"`` Lightning starts the other processes by running the same
    command again; they train, and only the first one exports, evaluates and returns
    the figures (the others return ``None``).
    """
    import warnings

    with warnings.catch_warnings():
        for pattern in _LIBRARY_NOISE:
            warnings.filterwarnings("ignore", message=pattern)
        return _train(spec)


def _train(spec: TrainSpec) -> dict | None:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import Callback, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger
    from rl4co.utils.trainer import RL4COTrainer

    if spec.threads is not None:
        torch.set_num_threads(spec.threads)
    elif spec.devices > 1 and spec.device != "gpu":
        # processes that share the cores: more threads than cores only contend
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // spec.devices))
    spec.out.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(spec.seed, verbose=False)
    city = None
    if spec.city is not None:
        from rota.data.city import City

        city = City.load(spec.city)
    accelerator = "gpu" if spec.device == "gpu" or (
        spec.device == "auto" and torch.cuda.is_available()
    ) else "cpu"  # fmt: skip

    model_path = spec.out / "model.pt"
    history: list[dict] = []
    config = spec.config
    last = spec.out / "checkpoints" / "last.ckpt"
    if spec.resume:
        if not last.is_file() or not model_path.is_file():
            raise ValueError(
                f"--resume: no checkpoint to resume in {spec.out} (checkpoints/last.ckpt)"
            )
        previous = load_model(model_path)
        if (previous.problem, previous.nodes) != (spec.problem, spec.nodes):
            raise ValueError(
                f"--resume: {spec.out} holds a {previous.problem} model with "
                f"{previous.nodes} nodes, not {spec.problem} with {spec.nodes}"
            )
        config = previous.config  # the architecture is the checkpoint's
        history = list(previous.training.get("runs", []))
    initial = None
    if spec.init is not None:
        initial = load_model(spec.init)
        if initial.problem != spec.problem:
            raise ValueError(
                f"--init {spec.init}: the model is for {initial.problem}, not {spec.problem}"
            )
        config = initial.config
        history = list(initial.training.get("runs", []))

    validation = validation_instances(spec, city)
    references = validation_references(spec, validation)
    val_td = to_tensordict(validation)
    val_td.set("reference", torch.as_tensor(references, dtype=torch.float32))
    generator = InstanceGenerator(
        spec.problem, spec.nodes, seed=spec.seed + len(history), **_map_area(city, "train")
    )
    env = make_env(spec.problem, generator, fixed_sets={"val": val_td, "test": val_td})
    policy = build_policy(config, env.name)
    if initial is not None:
        policy.load_state_dict(initial.policy.state_dict())
    module = _pomo_class()(
        env, policy, batch_size=spec.batch_size, train_data_size=spec.epoch_size,
        val_data_size=spec.val_size, val_batch_size=spec.val_size,
        optimizer_kwargs={"lr": spec.lr}, num_augment=1, num_starts=spec.starts,
        metrics={"train": ["loss", "reward"], "val": ["reward", "gap_pct"]},
    )  # fmt: skip

    started_at = datetime.now(UTC)
    started = time.perf_counter()
    run = {
        "command": spec.command, "started": started_at.isoformat(timespec="seconds"),
        "device": _device_name(accelerator, spec.devices), "seed": spec.seed,
        "nodes": spec.nodes,
    }  # fmt: skip

    def training_record(steps: int) -> dict:
        wall = time.perf_counter() - started
        runs = [*history, {**run, "wall_seconds": round(wall, 1), "steps": steps}]
        return {
            "runs": runs, "steps": sum(r["steps"] for r in runs),
            "wall_seconds": round(sum(r["wall_seconds"] for r in runs), 1),
            "data": data_description(spec, city), "versions": _versions(),
            "batch_size": spec.batch_size, "lr": spec.lr, "starts": spec.starts,
        }  # fmt: skip

    class Budget(Callback):
        """Stops this run after its own wall-clock budget; exports the model as it goes.

        Under DDP the first process decides and the others follow it: processes that
        stopped at different steps would wait for each other's gradients for ever.
        """

        def __init__(self):
            self.exported = time.perf_counter()
            self.first_step = 0

        def on_train_start(self, trainer, pl_module):
            self.first_step = trainer.global_step  # a resumed run starts at its checkpoint's

        def on_train_batch_end(self, trainer, pl_module, *args):
            now = time.perf_counter()
            if trainer.is_global_zero and now - self.exported >= 60 * spec.export_minutes:
                save_model(model_path, pl_module.policy, spec.problem, spec.nodes, config,
                           training_record(trainer.global_step))  # fmt: skip
                self.exported = now
            if trainer.strategy.broadcast(now - started >= spec.max_time):
                trainer.should_stop = True

    budget = Budget()
    trainer = RL4COTrainer(
        accelerator=accelerator, devices=spec.devices, strategy=spec.strategy,
        precision="32-true", max_epochs=-1,
        # rl4co's default "medium" lets float32 matmuls run in bfloat16: TF32 speed on a
        # GPU, but emulated on most CPUs, where it made a step five times slower here.
        matmul_precision="medium" if accelerator == "gpu" else "highest",
        logger=CSVLogger(spec.out, name="metrics", version=len(history)),
        callbacks=[
            ModelCheckpoint(dirpath=spec.out / "checkpoints", save_last=True, save_top_k=0,
                            train_time_interval=timedelta(minutes=spec.export_minutes)),
            budget,
        ],
        enable_model_summary=False, log_every_n_steps=1,
    )  # fmt: skip
    # RL4COTrainer.fit only adjusts manual-optimisation models (POMO is not one) and
    # drops ``weights_only``; our own checkpoint holds hyperparameters beside tensors.
    pl.Trainer.fit(
        trainer, module, ckpt_path=str(last) if spec.resume else None, weights_only=False
    )
    trainer.save_checkpoint(last)
    if not trainer.is_global_zero:
        return None
    record = training_record(trainer.global_step - budget.first_step)
    policy = module.policy.cpu().eval()
    trained = NeuralModel(policy, spec.problem, spec.nodes, config, record, str(model_path))
    record["validation"] = evaluate_decodings(trained, validation, references)
    save_model(model_path, policy, spec.problem, spec.nodes, config, record)
    write_text(spec.out / "card.md", card(spec, config, record))
    return record


def data_description(spec: TrainSpec, city=None) -> str:
    if spec.city is not None:
        meta = city.metadata if city is not None else {}
        source = (
            f" ({meta.get('source')}, sha256 {str(meta.get('sha256'))[:12]}, "
            f"{meta.get('points')} points, seed {meta.get('seed')})"
            if meta
            else ""
        )
        return (
            f"{spec.problem}{spec.nodes} on {Path(spec.city).name}{source}: training instances "
            f"from its 'train' area (rota.data.generate, fresh seeds every batch), validation: "
            f"{spec.val_size} instances of its held-out 'test' area, seed {VALIDATION_SEED}"
        )
    return (
        f"{spec.problem}{spec.nodes} uniform in the unit square (rota.data.generate); "
        f"validation: {spec.val_size} instances, seed {VALIDATION_SEED}"
    )


def card(spec: TrainSpec, config: ModelConfig, record: dict) -> str:
    """The model card: how the model was made and what it achieves on validation."""
    lines = [
        f"# {spec.problem}{spec.nodes}: RRNCO-style policy trained by POMO", "",
        f"- Data: {record['data']}",
        f"- Model: {json.dumps(config.as_dict())}",
        f"- Optimiser: Adam, lr {record['lr']}, batch {record['batch_size']}, "
        "POMO shared baseline over "
        + ("every client" if record["starts"] is None else f"{record['starts']} starts"),
        f"- Trained: {record['steps']} steps in {record['wall_seconds'] / 3600:.2f} h "
        f"over {len(record['runs'])} run(s)",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in record['versions'].items())}", "",
        "| run | started | device | nodes | wall (s) | steps | command |",
        "|---|---|---|---:|---:|---:|---|",
    ]  # fmt: skip
    for k, r in enumerate(record["runs"], 1):
        lines.append(
            f"| {k} | {r['started']} | {r['device']} | {r.get('nodes', '')} "
            f"| {r['wall_seconds']} | {r['steps']} "
            f"| `{r['command']}` |"
        )
    lines += [
        "",
        f"Validation (PyVRP reference at {spec.reference_time:g} s per instance, "
        "`validation.json`):",
        "",
        "| decoding | mean gap % | seconds per instance (CPU) |",
        "|---|---:|---:|",
    ]
    for name, figures in record.get("validation", {}).items():
        lines.append(
            f"| {name} | {figures['gap_pct']:.2f} | {figures['seconds_per_instance']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def command_line() -> str:
    return shlex.join(["rota", *sys.argv[1:]])
