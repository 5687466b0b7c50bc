"""``rota train --problem contacts``: REINFORCE with a shared baseline on the contacts policy.

Each training instance is rolled out ``samples`` times; rl4co's REINFORCE
with ``baseline="shared"`` takes their mean as the baseline (the policy
returns rewards shaped ``(B, S)``), and advantages are divided by their
running standard deviation (hours vary with the instance's size). Training
instances come from :class:`~rota.envs.contacts.ContactsGenerator`:
generated weeks and perturbed slices of the training weeks (``train_weeks``),
never of another week, so that a week held out stays unseen.

Validation: ``val_size`` instances drawn the same way from another seed,
with greedy's and the ``ga``'s schedules (``reference_time`` seconds each)
as references, computed once and kept in ``validation.json``. The gap is
``100 * (ga - policy) / ga`` (the family maximises). The folder holds what
:mod:`rota.models.training` leaves, ``model.pt`` (exported every few minutes
and at the end) and ``card.md``.

Options (``--option KEY=VALUE``): ``requests`` (largest training instance,
default 100), ``train_weeks`` (comma-separated week files), ``generated``
(share of generated instances, default 0.5 with weeks), ``samples``
(rollouts per instance, default 8), ``embed_dim``, ``num_layers``,
``num_heads``, ``ff_hidden`` and ``reference_time`` (default 1 s).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rota.envs.contacts import ContactsEnv, ContactsGenerator, prepare
from rota.files import write_text
from rota.models.contacts import (
    ContactsConfig,
    ContactsModel,
    ContactsPolicy,
    decode,
    load_model,
)
from rota.models.contacts import save_model as save_contacts_model
from rota.models.training import (
    LIBRARY_NOISE,
    RunSpec,
    ValidationGap,
    begin,
    cached_record,
    fit,
    learning_rate_text,
    runs_table,
)
from rota.problems.contacts import ContactInstance

#: Seed of the validation instances' stream (training streams start at the run's seed).
VALIDATION_SEED = 10_000
#: Samples of the ``sampling`` decoding reported on the card.
CARD_SAMPLES = 16
_CONFIG_KEYS = ("embed_dim", "num_layers", "num_heads", "ff_hidden")
OPTIONS = ("requests", "train_weeks", "generated", "samples", "reference_time", *_CONFIG_KEYS)


def _settings(options: dict[str, Any]) -> dict[str, Any]:
    """The trainer's options with defaults; a ValueError names an unknown or bad one."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(
            f"contacts training: unknown option {unknown[0]!r}; valid options: {', '.join(OPTIONS)}"
        )
    weeks = options.get("train_weeks", "")
    paths = [Path(p) for p in str(weeks).split(",") if p.strip()] if weeks else []
    for path in paths:
        if not path.is_file():
            raise ValueError(f"contacts training: train_weeks names {str(path)!r}, not a file")
    settings = {
        "requests": options.get("requests", 100),
        "train_weeks": paths,
        "generated": options.get("generated", 0.5 if paths else 1.0),
        "samples": options.get("samples", 8),
        "reference_time": options.get("reference_time", 1.0),
    }
    for key in ("requests", "samples", *_CONFIG_KEYS):
        value = options.get(key, settings.get(key, 1))
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"contacts training: option {key}={value!r} must be an integer")
    for key in ("generated", "reference_time"):
        if isinstance(settings[key], bool) or not isinstance(settings[key], int | float):
            raise ValueError(f"contacts training: option {key}={settings[key]!r} must be a number")
    if not settings["reference_time"] > 0:
        raise ValueError(
            f"contacts training: option reference_time={settings['reference_time']!r} "
            "must be positive"
        )
    return settings


def validation_references(out: Path, instances: list, seconds: float) -> dict[str, list[float]]:
    """Greedy's and the ga's objectives on the validation instances, kept in ``validation.json``.

    The file is reused when it was made for the same instances (names, sizes,
    hours requested) and the same ga budget.
    """
    import rota

    def solve() -> dict:
        greedy = [float(rota.solve(i, solver="greedy").objective) for i in instances]
        ga = [float(rota.solve(i, solver="ga", time_limit=seconds, seed=0).objective)
              for i in instances]  # fmt: skip
        return {"seed": 0, "greedy": greedy, "ga": ga}

    key = {
        "instances": [[i.name, i.num_requests, round(i.requested_hours, 6)] for i in instances],
        "ga_seconds": seconds,
    }
    record = cached_record(out / "validation.json", key, solve)
    return {"greedy": record["greedy"], "ga": record["ga"]}


def _module_class():
    from rl4co.models.rl.reinforce.reinforce import REINFORCE

    class GapREINFORCE(ValidationGap, REINFORCE):
        """REINFORCE that also logs the validation gap to the ga references in the batch."""

        maximise = True

    return GapREINFORCE


def evaluate_decodings(
    model: ContactsModel, instances: list, references: list[float], seed: int = 0
) -> dict[str, dict[str, float]]:
    """Mean gap (%) to the references and decode time, greedy and best of sampling."""
    figures = {}
    for name, decoding, samples in (
        ("greedy", "greedy", 1),
        (f"sampling {CARD_SAMPLES} (best)", "sampling", CARD_SAMPLES),
    ):
        started = time.perf_counter()
        found = decode(model, instances, decoding, samples, seed=seed)
        seconds = time.perf_counter() - started
        values = np.asarray([f.objective for f in found])
        gaps = 100 * (np.asarray(references) - values) / np.asarray(references)
        figures[name] = {
            "gap_pct": float(gaps.mean()),
            "seconds_per_instance": seconds / len(instances),
        }
    return figures


def data_description(settings: dict[str, Any], val_size: int) -> str:
    weeks = ", ".join(p.name for p in settings["train_weeks"]) or "none"
    return (
        f"up to {settings['requests']} requests an instance; "
        f"{settings['generated']:.0%} generated (rota.data.contacts: three times the requests "
        f"over three days, a third kept), the rest slices of 2 to 3.5 days of the training "
        f"weeks ({weeks}), shifted in time; validation: {val_size} instances drawn alike, "
        f"seed {VALIDATION_SEED}"
    )


def train(run: RunSpec, options: dict[str, Any]) -> dict | None:
    """Train (or resume) the contacts policy; export ``model.pt``, write the card.

    Returns the record: ``steps``, ``validation`` (per decoding, ``gap_pct`` to the
    ga and ``seconds_per_instance``), ``reference`` and the runs so far; ``None`` on
    the other processes of a distributed run.
    """
    import rota

    settings = _settings(options)
    model_path = run.out / "model.pt"
    config = ContactsConfig(
        train_samples=settings["samples"],
        **{k: options[k] for k in _CONFIG_KEYS if k in options},
    )
    model, history = begin(run, load_model)
    initial = model if run.init is not None else None
    if model is not None:
        config = model.config  # the architecture is the model's

    weeks = [rota.read(p) for p in settings["train_weeks"]]
    for path, week in zip(settings["train_weeks"], weeks, strict=True):
        if not isinstance(week, ContactInstance):
            raise ValueError(f"contacts training: {path} is not a contact-scheduling instance")

    def generator(seed: int) -> ContactsGenerator:
        return ContactsGenerator(weeks, settings["requests"], settings["generated"], seed=seed)

    validation = generator(VALIDATION_SEED).draw(run.val_size)
    references = validation_references(run.out, validation, settings["reference_time"])
    env = ContactsEnv(generator(run.seed + len(history)))
    val_td = env.load([prepare(i) for i in validation], pin=True)
    val_td.set("reference", torch.as_tensor(references["ga"], dtype=torch.float32))
    env.fixed_sets = {"val": val_td, "test": val_td}
    policy = ContactsPolicy(config)
    if initial is not None:
        policy.load_state_dict(initial.policy.state_dict())
    with warnings.catch_warnings():
        for pattern in LIBRARY_NOISE:
            warnings.filterwarnings("ignore", message=pattern)
        module = _module_class()(
            env, policy, baseline="shared", reward_scale="scale",
            batch_size=run.batch_size, train_data_size=run.epoch_size,
            val_data_size=run.val_size, val_batch_size=run.val_size,
            optimizer_kwargs={"lr": run.lr},
            metrics={"train": ["loss", "reward", "max_reward"], "val": ["reward", "gap_pct"]},
        )  # fmt: skip

    def export(pl_module, record: dict) -> None:
        save_contacts_model(model_path, pl_module.policy, record)

    fitted = fit(
        module, run, export, history,
        run_fields={"requests": settings["requests"]},
        record_fields={"data": data_description(settings, run.val_size),
                       "samples": config.train_samples,
                       "train_weeks": [w.name for w in weeks]},
    )  # fmt: skip
    record = fitted.record
    if record is None:
        return None
    policy = module.policy.cpu().eval()
    trained = ContactsModel(policy, config, record, str(model_path))
    record["validation"] = evaluate_decodings(trained, validation, references["ga"])
    greedy_gaps = 100 * (np.asarray(references["ga"]) - references["greedy"]) / references["ga"]
    record["greedy_gap_pct"] = float(greedy_gaps.mean())
    record["reference"] = f"ga at {settings['reference_time']:g} s per instance"
    save_contacts_model(model_path, policy, record)
    write_text(run.out / "card.md", card(config, record))
    return record


def card(config: ContactsConfig, record: dict) -> str:
    """The model card: data, model, runs (hardware, wall time) and validation figures."""
    lines = [
        "# contacts: attention policy over requests and antennas, REINFORCE (shared baseline)",
        "",
        f"- Data: {record['data']}",
        f"- Model: {json.dumps(config.as_dict())}",
        f"- Optimiser: Adam, {learning_rate_text(record)}, "
        f"batch {record['batch_size']} instances x "
        f"{record['samples']} rollouts, shared baseline (their mean), advantages scaled by "
        "their running standard deviation",
        f"- Trained: {record['steps']} steps in {record['wall_seconds'] / 60:.1f} min "
        f"over {len(record['runs'])} run(s)",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in record['versions'].items())}",
        "",
        *runs_table(record["runs"], columns=("requests",)),
        "",
        f"Validation (gap to the {record['reference']}, `validation.json`; greedy's gap: "
        f"{record['greedy_gap_pct']:.2f} %):",
        "",
        "| decoding | mean gap % | seconds per instance (CPU) |",
        "|---|---:|---:|",
    ]
    for name, figures in record.get("validation", {}).items():
        lines.append(
            f"| {name} | {figures['gap_pct']:.2f} | {figures['seconds_per_instance']:.3f} |"
        )
    return "\n".join(lines) + "\n"


__all__ = ["OPTIONS", "card", "evaluate_decodings", "train", "validation_references"]
