"""``rota train --problem placement``: REINFORCE for the placement policy, with Lightning.

The shared harness (:func:`rota.models.training.fit`) runs the budget,
checkpoints and resume; this module says what is trained on and how it is
judged. A training folder gets, beside the harness's files:

``model.pt``
    the model file the ``neural`` placement solver loads
    (:func:`rota.models.placement.load_model`).
``validation.json``
    the fixed validation set's reference objectives (``ga`` at
    ``reference_time`` seconds per instance), computed once.
``card.md``
    what the model was trained on, how long, on what hardware, and its
    validation gap with each decoding.

The model kept at the end of a run is the one of the run's best validation
gap (greedy decoding, checked every epoch), not the last one.

Options (``--option key=value``): the training shape ``experts``, ``layers``,
``gpus``, ``nodes``, ``top_k``, ``slots``; ``tokens`` per generated trace;
``samples``, the rollouts per instance the shared baseline averages;
``reference_time``; and the policy's ``hidden`` and ``blocks``. The policy's
features do not depend on the shape, so a model trained on one shape serves
others (the benchmark measures how well).

The loss is REINFORCE with the shared baseline (the mean objective of an
instance's ``samples`` rollouts), the advantage divided by that mean: every
instance weighs by its relative gain whatever its token count.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rota.envs.placement import PlacementEnv, PlacementGenerator, to_tensordict
from rota.files import write_text
from rota.models.placement import (
    DECODINGS,
    PlacementModel,
    PlacementModelConfig,
    PlacementPolicy,
    decode,
    load_model,
    save_model,
)
from rota.models.training import (
    RunSpec,
    ValidationGap,
    begin,
    cached_record,
    fit,
    learning_rate_text,
    runs_table,
)

#: Seed of the validation instances' generator (training draws from the run's seed).
VALIDATION_SEED = 20_000
#: Options and their defaults: a 2-node shape with the traits of the large cases.
DEFAULTS: dict[str, Any] = {
    "experts": 32, "layers": 6, "gpus": 8, "nodes": 2, "top_k": 4, "slots": None,
    "tokens": 2048, "samples": 8, "reference_time": 2.0, "hidden": 64, "blocks": 2,
}  # fmt: skip
_INTEGERS = ("experts", "layers", "gpus", "nodes", "top_k", "slots", "tokens", "samples",
             "hidden", "blocks")  # fmt: skip
#: Rollouts per instance of the ``sampling`` and ``both`` validation decodings.
VALIDATION_SAMPLES = 16


def parse_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options with their defaults; an unknown key or a bad value raises, named."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ValueError(
            f"unknown placement training option(s) {', '.join(unknown)}; "
            f"valid: {', '.join(DEFAULTS)}"
        )
    parsed = dict(DEFAULTS)
    for key, value in options.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"option {key}={value!r} is not a number") from None
        if key in _INTEGERS:
            if number != int(number) or number < 1:
                raise ValueError(f"option {key}={value!r} must be a positive integer")
            parsed[key] = int(number)
        else:
            if not (number > 0 and np.isfinite(number)):
                raise ValueError(f"option {key}={value!r} must be a positive number")
            parsed[key] = number
    if parsed["samples"] < 2:
        raise ValueError(f"option samples={parsed['samples']} must be at least 2 (the baseline)")
    return parsed


def generator(options: dict[str, Any], seed: int) -> PlacementGenerator:
    extra = {k: options[k] for k in ("nodes", "slots", "tokens") if options[k] is not None}
    return PlacementGenerator(
        options["experts"], options["layers"], options["gpus"], options["top_k"], seed=seed,
        **extra,
    )  # fmt: skip


def validation_references(out: Path, instances: list, seconds: float) -> np.ndarray:
    """``ga``'s objective of each validation instance, solved once and kept in
    ``validation.json``."""
    import rota

    def solve() -> dict:
        objectives = [float(rota.solve(inst, solver="ga", time_limit=seconds, seed=0).objective)
                      for inst in instances]  # fmt: skip
        return {"solver": "ga", "seed": 0, "objectives": objectives}

    key = {"names": [inst.name for inst in instances], "time_limit": seconds}
    return np.asarray(cached_record(out / "validation.json", key, solve)["objectives"], float)


def _module_class():
    from rl4co.models.rl.reinforce.reinforce import REINFORCE

    class PlacementREINFORCE(ValidationGap, REINFORCE):
        """REINFORCE with a relative advantage; logs the validation gap to the references."""

        def calculate_loss(self, td, batch, policy_out, reward=None, log_likelihood=None):
            reward = policy_out["reward"]
            baseline = reward.mean(1, keepdim=True)
            advantage = ((reward - baseline) / baseline.abs().clamp_min(1e-9)).float()
            loss = -(advantage * policy_out["log_likelihood"]).mean()
            policy_out.update({"loss": loss, "reward": reward.float()})
            return policy_out

        def on_validation_gap(self, gap, phase: str) -> None:
            """Keep the weights of the best validation gap: REINFORCE's greedy decoding
            drifts while the sampled rollouts it trains on still improve."""
            if phase != "val" or self.trainer.sanity_checking:
                return
            gap = float(gap.mean())
            if gap < getattr(self, "best_gap", float("inf")):
                self.best_gap, self.best_step = gap, self.global_step
                self.best_state = {
                    k: v.detach().cpu().clone() for k, v in self.policy.state_dict().items()
                }

    return PlacementREINFORCE


def evaluate_decodings(
    model: PlacementModel, instances: list, references: np.ndarray
) -> dict[str, dict[str, float]]:
    """Mean gap to the references and decoding seconds per instance, for every decoding."""
    figures = {}
    for name in DECODINGS:
        started = time.perf_counter()
        found = decode(model.policy, instances, name, samples=VALIDATION_SAMPLES, seed=0)
        seconds = (time.perf_counter() - started) / len(instances)
        values = np.array([d.objective for d in found])
        figures[name] = {
            "gap_pct": float(np.mean(100 * (values / references - 1))),
            "seconds_per_instance": seconds,
        }
    return figures


def train(run: RunSpec, options: dict[str, Any]) -> dict | None:
    """Train (or resume), export ``model.pt``, write the card; returns the record."""
    settings = parse_options(options)
    model_path = run.out / "model.pt"
    config = PlacementModelConfig(hidden=settings["hidden"], blocks=settings["blocks"])
    model, history = begin(run, load_model)
    initial = model if run.init is not None else None
    if model is not None:
        config = model.config  # the architecture is the model's

    validation = generator(settings, VALIDATION_SEED).instances(run.val_size)
    references = validation_references(run.out, validation, settings["reference_time"])
    val_td = to_tensordict(validation)
    val_td.set("reference", torch.as_tensor(references, dtype=torch.float64))
    env = PlacementEnv(
        generator(settings, run.seed + len(history)), fixed_sets={"val": val_td, "test": val_td}
    )
    policy = PlacementPolicy(config, train_samples=settings["samples"])
    if initial is not None:
        policy.load_state_dict(initial.policy.state_dict())
    module = _module_class()(
        env, policy, baseline="shared", batch_size=run.batch_size,
        train_data_size=run.epoch_size, val_data_size=run.val_size,
        val_batch_size=run.val_size, optimizer_kwargs={"lr": run.lr},
        metrics={"train": ["loss", "reward"], "val": ["reward", "gap_pct"]},
    )  # fmt: skip
    shape = {k: settings[k] for k in ("experts", "layers", "gpus", "nodes", "top_k", "slots")}
    data = (
        f"rota.data.placement.generate_instance({json.dumps(shape)}, tokens={settings['tokens']}),"
        f" a fresh model seed and token batch per instance; validation: {run.val_size} "
        f"instances, generator seed {VALIDATION_SEED}"
    )

    def export(pl_module, record: dict) -> None:
        save_model(model_path, pl_module.policy, config, record)

    fitted = fit(
        module, run, export, history,
        run_fields={"shape": "x".join(str(shape[k]) for k in ("experts", "layers", "gpus"))},
        record_fields={"data": data, "options": settings},
    )  # fmt: skip
    record = fitted.record
    if record is None:
        return None
    policy = module.policy.cpu().eval()
    if hasattr(module, "best_state"):
        policy.load_state_dict(module.best_state)
        record["selected"] = {"step": module.best_step, "val_gap_pct": module.best_gap}
    trained = PlacementModel(policy, config, record, str(model_path))
    record["validation"] = evaluate_decodings(trained, validation, references)
    record["reference"] = f"ga at {settings['reference_time']:g} s per instance"
    save_model(model_path, policy, config, record)
    write_text(run.out / "card.md", card(config, record))
    return record


def card(config: PlacementModelConfig, record: dict) -> str:
    """The model card: how the model was made and what it achieves on validation."""
    settings = record["options"]
    lines = [
        "# placement: learned expert placer trained by REINFORCE", "",
        f"- Data: {record['data']}",
        f"- Model: {json.dumps(config.as_dict())}",
        f"- Optimiser: Adam, {learning_rate_text(record)}, "
        f"batch {record['batch_size']} instances x "
        f"{settings['samples']} sampled rollouts, shared baseline (their mean), relative "
        "advantage",
        f"- Trained: {record['steps']} steps in {record['wall_seconds'] / 3600:.2f} h "
        f"over {len(record['runs'])} run(s); the weights kept are those of the best "
        "validation gap (greedy decoding) of the last run"
        + (f", at its step {record['selected']['step']}" if "selected" in record else ""),
        f"- Versions: {', '.join(f'{k} {v}' for k, v in record['versions'].items())}", "",
        *runs_table(record["runs"], columns=("shape",)), "",
        f"Validation ({record['reference']}, `validation.json`; `sampling` and `both` draw "
        f"{VALIDATION_SAMPLES} rollouts):", "",
        "| decoding | mean gap % | seconds per instance (CPU) |",
        "|---|---:|---:|",
    ]  # fmt: skip
    for name, figures in record.get("validation", {}).items():
        lines.append(
            f"| {name} | {figures['gap_pct']:.2f} | {figures['seconds_per_instance']:.3f} |"
        )
    return "\n".join(lines) + "\n"


__all__ = ["DEFAULTS", "VALIDATION_SEED", "card", "parse_options", "train"]
