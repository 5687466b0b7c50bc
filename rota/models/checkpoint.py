"""Model files (``rota.neural/1``) and batched decoding of routing instances.

A model file is a ``torch.save`` of a plain dictionary: ``format``,
``problem`` and ``nodes`` it was trained for, the :class:`ModelConfig`, the
policy's ``state_dict`` and ``training`` (what the card reports). It loads on
a CPU whatever it was trained on. Lightning's checkpoints (optimiser state
included) stay in the training folder for resuming; only model files ship.
The other families' models use the same format tag and ``problem`` field
(:func:`write_model_file`, :func:`read_model_file`) with payloads of their own,
so a model of one problem is refused by name where another's is expected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rota.envs.routing import PROBLEMS, make_env, to_tensordict
from rota.errors import FormatError
from rota.files import atomic_open
from rota.models.rrnco import ModelConfig, build_policy
from rota.problems.routing import RoutingInstance

MODEL_FORMAT = "rota.neural/1"
DECODINGS = ("greedy", "multistart", "sampling")
#: The most position transforms one decode takes (``augment``): 8 dihedral
#: transforms of each of 16 rotations, a rotation every 5.6 degrees.
MAX_AUGMENT = 128
#: Rollouts (instances x transforms x starts or samples) decoded at once: 128
#: ATSP100 instances with x32 and every start (409,600) took more than 23 GiB.
ROLLOUT_ROWS = 2**15
#: A model serves instances from half to twice the size it was trained on.
SIZE_RANGE = (0.5, 2.0)


@dataclass
class NeuralModel:
    """A loaded policy and what it was trained for."""

    policy: Any
    problem: str
    nodes: int
    config: ModelConfig
    training: dict
    path: str

    def size_reason(self, clients: int) -> str | None:
        """Why an instance of ``clients`` clients is outside this model's range, or ``None``."""
        low, high = (round(f * self.nodes) for f in SIZE_RANGE)
        if not low <= clients <= high:
            return (
                f"model {self.path} is trained on {self.problem} with {self.nodes} nodes; "
                f"it serves {low} to {high}, not {clients}"
            )
        return None


def write_model_file(path: str | Path, problem: str, payload: dict) -> None:
    """Write a model file of ``problem`` atomically; ``payload`` holds tensors and plain data."""
    with atomic_open(Path(path), "wb") as handle:
        torch.save({"format": MODEL_FORMAT, "problem": problem, **payload}, handle)


def read_model_file(
    path: str | Path, problems: Sequence[str], device: str | torch.device = "cpu"
) -> dict:
    """The payload of a model file for one of ``problems``; a one-line :class:`FormatError`
    for anything else (no file, not torch's, not a rota model, a model of another problem)."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such model file")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not its own
        raise FormatError(f"{path}: not a rota model file ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise FormatError(f"{path}: not a {MODEL_FORMAT} model file")
    problem = payload.get("problem")
    if problem not in problems:
        raise FormatError(f"{path}: problem is {problem!r}, expected one of {', '.join(problems)}")
    return payload


def write_policy(
    path: str | Path, problem: str, policy, config: dict, training: dict, **fields: Any
) -> None:
    """A model file of ``problem``: the policy's weights (on the CPU), its ``config``
    (a plain dict), what ``training`` reports and any other plain ``fields``."""
    state = {k: v.detach().cpu() for k, v in policy.state_dict().items()}
    payload = {**fields, "config": config, "state_dict": state, "training": training}
    write_model_file(path, problem, payload)


def read_policy(
    path: str | Path,
    problems: Sequence[str],
    build: Callable[[dict], tuple[Any, Any]],
    device: str | torch.device = "cpu",
) -> tuple[Any, Any, dict]:
    """``(config, policy, payload)`` of a model file for one of ``problems``, the policy in
    evaluation mode on ``device``; ``build(payload)`` makes the config and the empty policy.
    A file whose weights do not fit what it describes is a one-line :class:`FormatError`."""
    payload = read_model_file(path, problems, device)
    try:
        config, policy = build(payload)
        policy.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise FormatError(f"{path}: model does not load ({type(exc).__name__}: {exc})") from None
    policy.to(device).eval()
    return config, policy, payload


def save_model(
    path: str | Path, policy, problem: str, nodes: int, config: ModelConfig, training: dict
) -> None:
    """Write a routing model file (see the module docstring)."""
    write_policy(path, problem, policy, config.as_dict(), training, nodes=int(nodes))


def load_model(path: str | Path, device: str | torch.device = "cpu") -> NeuralModel:
    """Read a routing model file; anything else is a one-line :class:`FormatError`."""

    def build(payload: dict) -> tuple[ModelConfig, Any]:
        config = ModelConfig(**payload["config"])
        return config, build_policy(config, make_env(payload["problem"]).name)

    config, policy, payload = read_policy(path, PROBLEMS, build, device)
    return NeuralModel(
        policy, payload["problem"], int(payload["nodes"]), config,
        dict(payload.get("training", {})), str(path),
    )  # fmt: skip


def _routes_used(actions: torch.Tensor) -> torch.Tensor:
    previous = torch.nn.functional.pad(actions[:, :-1], (1, 0))
    return ((previous == 0) & (actions > 0)).sum(-1)


def check_augment(augment: Any) -> int:
    """``augment`` as an int: 1, or a multiple of 8 up to :data:`MAX_AUGMENT`."""
    whole = isinstance(augment, int | str) and str(augment).strip().isdigit()
    count = int(augment) if whole else 0
    if not (count == 1 or (count % 8 == 0 and 8 <= count <= MAX_AUGMENT)):
        raise ValueError(
            f"augment is {augment!r}, expected 1 or a multiple of 8 up to {MAX_AUGMENT}"
        )
    return count


def augmented_positions(locs: torch.Tensor, augment: int) -> torch.Tensor:
    """``augment`` transforms of each instance's positions, ``(augment * B, N, 2)``.

    The 8 dihedral transforms of the unit square (POMO's x8) of each of
    ``augment / 8`` rotations evenly spread over a quarter turn (the dihedral
    transforms supply the quarter turns and reflections), so the first 8 are
    POMO's. A rotated layout is fitted back into the unit square the way the
    environment fits an instance's own (its lower-left corner at the origin,
    its longer side of length 1, aspect kept), so the policy sees positions
    like those it was trained on. Row ``t * B + b`` is transform ``t`` of
    instance ``b``, rl4co's ``batchify`` order.
    """
    from rl4co.data.transforms import dihedral_8_augmentation

    if augment == 1:
        return locs
    x, y = locs[..., 0], locs[..., 1]
    layouts = [dihedral_8_augmentation(locs)]
    for k in range(1, augment // 8):
        angle = k * (math.pi / 2) / (augment // 8)
        turned = torch.stack(
            (math.cos(angle) * x - math.sin(angle) * y, math.sin(angle) * x + math.cos(angle) * y),
            dim=-1,
        )
        turned = turned - turned.amin(dim=1, keepdim=True)
        turned = turned / turned.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)
        layouts.append(dihedral_8_augmentation(turned))
    return torch.cat(layouts, dim=0)


@torch.inference_mode()
def decode(
    model: NeuralModel,
    instances: Sequence[RoutingInstance],
    decoding: str = "multistart",
    augment: int = 1,
    samples: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> list[tuple[np.ndarray | None, float]]:
    """The best decoded action sequence of each instance and its cost (instance units).

    ``greedy`` decodes once from the depot, ``multistart`` once from every
    client (POMO), ``sampling`` draws ``samples`` sequences; ``augment`` (1, or
    a multiple of 8) repeats it on that many transforms of the positions
    (:func:`augmented_positions`). An instance with a fleet limit keeps only
    sequences within it; ``(None, inf)`` when none is.
    """
    best = decode_candidates(model, instances, 1, decoding, augment, samples, seed, device)
    return [found[0] if found else (None, float("inf")) for found in best]


@torch.inference_mode()
def decode_candidates(
    model: NeuralModel,
    instances: Sequence[RoutingInstance],
    keep: int,
    decoding: str = "multistart",
    augment: int = 1,
    samples: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> list[list[tuple[np.ndarray, float]]]:
    """Up to ``keep`` distinct decoded sequences of each instance, cheapest first.

    Decodings as :func:`decode`; sequences beyond an instance's fleet limit
    are left out, so an instance may get fewer (or none). The instances are
    decoded in chunks of at most :data:`ROLLOUT_ROWS` rollouts.
    """
    if decoding not in DECODINGS:
        raise ValueError(f"decoding is {decoding!r}, expected one of {', '.join(DECODINGS)}")
    augment = check_augment(augment)
    torch.manual_seed(seed)
    per_instance = {"greedy": 1, "multistart": instances[0].num_locations if instances else 1,
                    "sampling": samples}[decoding] * augment  # fmt: skip
    chunk = max(1, ROLLOUT_ROWS // per_instance)
    found: list[list[tuple[np.ndarray, float]]] = []
    for first in range(0, len(instances), chunk):
        found += _decode_chunk(
            model, instances[first : first + chunk], keep, decoding, augment, samples, device
        )
    return found


def _decode_chunk(
    model: NeuralModel,
    instances: Sequence[RoutingInstance],
    keep: int,
    decoding: str,
    augment: int,
    samples: int,
    device: str | torch.device,
) -> list[list[tuple[np.ndarray, float]]]:
    from rl4co.utils.ops import batchify

    env = make_env(model.problem)
    td = to_tensordict(instances, device)
    batch = len(instances)
    if augment > 1:
        locs = td["locs"]
        td = batchify(td, augment)
        td["locs"] = augmented_positions(locs, augment)
    td = env.reset(td)
    kwargs: dict[str, Any] = {"decode_type": "greedy"}
    if decoding == "multistart":
        kwargs = {"decode_type": "multistart_greedy", "num_starts": env.get_num_starts(td)}
    elif decoding == "sampling":
        kwargs = {"decode_type": "sampling", "num_samples": samples}
    out = model.policy(td, env, phase="test", return_actions=True, **kwargs)
    actions, cost = out["actions"].cpu(), -out["reward"].cpu()
    limits = torch.tensor([inst.vehicle_types[0].count or 0 for inst in instances])
    rows = torch.arange(actions.shape[0]) % batch
    over = (limits[rows] > 0) & (_routes_used(actions) > limits[rows])
    found: list[list[tuple[np.ndarray, float]]] = []
    for b in range(batch):
        mine = torch.nonzero((rows == b) & ~over).squeeze(-1)
        kept: list[tuple[np.ndarray, float]] = []
        seen: set[bytes] = set()
        for k in mine[torch.argsort(cost[mine], stable=True)].tolist():
            sequence = actions[k].numpy()
            key = np.trim_zeros(sequence, "b").tobytes()  # finished rows pad with depot visits
            if key in seen:
                continue
            seen.add(key)
            kept.append((sequence, float(cost[k])))
            if len(kept) == keep:
                break
        found.append(kept)
    return found
