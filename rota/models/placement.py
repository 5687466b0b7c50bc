"""The learned expert placer: a small policy over GPUs, for :mod:`rota.envs.placement`.

At every step the environment asks where the current expert (of layer
``l``) goes. The policy describes each GPU by what that choice would do,
in units that do not depend on the model's size, so one network serves any
number of layers, experts, GPUs and nodes:

- the expert's load and the GPU's load so far, over the layer's mean GPU
  load ``m``; how much the choice raises the layer's busiest GPU, over ``m``;
- the weighted traffic from the expert's predecessors (layer ``l - 1``, all
  placed) if it goes there, ``comm_weight * sum_i flows[i, e] * hop``, over
  ``m``, and above the cheapest GPU; the share of its inflow already on that
  GPU and on its node;
- affinity: how similar (cosine of the rows of ``flows[l]``) its successors
  are to those of the experts already on that GPU, the look-ahead that lets
  layer ``l + 1`` keep its tokens local;
- free slots, progress through the layer and the load still to place.

A per-GPU MLP embeds these, a few DeepSets blocks mix every GPU with the
mean of all (masked ones left out), and a linear head gives a logit, to
which a learned multiple of minus the objective's increase is added: the
untrained policy is the myopic greedy (cheapest increase first), and
training learns when to deviate from it. Full GPUs are masked.

Decoding: ``greedy`` (the likeliest GPU each step), ``sampling`` (``samples``
rollouts, the best kept) and ``both`` (greedy and the samples, the best
kept). In the ``train`` phase the policy samples ``train_samples`` rollouts
per instance and returns ``reward`` and ``log_likelihood`` shaped ``(B, S)``,
so rl4co's REINFORCE with the shared baseline (the mean over the ``S``
rollouts) trains it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rl4co.utils.ops import batchify, unbatchify
from tensordict import TensorDict
from torch import nn

from rota.envs.placement import PlacementEnv, current, to_tensordict
from rota.problems.placement import PlacementInstance

#: The ``problem`` of placement model files.
PROBLEM = "placement"

#: Per-GPU features (see :func:`features`).
FEATURES = 14
#: Initial weight of the greedy prior: an increase of the objective by one mean GPU load
#: makes a GPU about e^10 times less likely.
PRIOR = 10.0
DECODINGS = ("greedy", "sampling", "both")


@dataclass(frozen=True)
class PlacementModelConfig:
    """The shape of a placement policy; stored in every model file."""

    hidden: int = 64
    blocks: int = 2

    def __post_init__(self) -> None:
        for name in ("hidden", "blocks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def features(td: TensorDict) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, G, FEATURES)`` float32 features of every GPU for the current step, and ``(B, G)``
    the objective's increase over the layer's mean GPU load (the greedy prior)."""
    loads, flows, hop = td["loads"], td["flows"], td["hop"]
    layers, experts = loads.shape[-2:]
    gpus = hop.shape[-1]
    layer, expert = current(td)
    rows = torch.arange(layer.shape[0], device=layer.device)
    # every instance of a batch is at the same step
    li = int(layer[0])
    mean = (loads[:, li].sum(-1) / gpus).clamp_min(1e-9)[:, None]  # (B, 1)
    weight = loads[rows, li, expert][:, None]  # (B, 1)
    gpu_load = td["gpu_load"][:, li]  # (B, G)
    busiest = gpu_load.amax(-1, keepdim=True)
    raise_ = (gpu_load + weight - busiest).clamp_min(0.0)
    zeros = torch.zeros_like(gpu_load)
    if li > 0:
        inflow = flows[rows, li - 1, :, expert]  # (B, E) tokens from each predecessor
        on_gpu = zeros.scatter_add(1, td["placement"][:, li - 1], inflow)
        total = inflow.sum(-1, keepdim=True).clamp_min(1e-9)
        incoming = (on_gpu.unsqueeze(1) @ hop).squeeze(1) * td["comm_weight"][:, None]
        same_node = (hop <= 1.0).to(on_gpu.dtype)  # 0 on the GPU itself, 1 within its node
        node_share = (on_gpu.unsqueeze(1) @ same_node).squeeze(1) / total
        gpu_share = on_gpu / total
        scale = td["comm_weight"][:, None] * total / mean
    else:
        incoming, node_share, gpu_share = zeros, zeros, zeros
        scale = torch.zeros_like(mean)
    free = td["action_mask"]
    cheapest = torch.where(free, incoming, torch.inf).amin(-1, keepdim=True)
    if li < layers - 1:
        successors = flows[:, li]  # (B, E, E)
        unit = successors / successors.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        similarity = (unit @ unit[rows, expert].unsqueeze(-1)).squeeze(-1)  # (B, E)
        placed = td["placement"][:, li]
        similarity = torch.where(placed >= 0, similarity, 0.0)
        affinity = zeros.scatter_add(1, placed.clamp_min(0), similarity)
    else:
        affinity = zeros
    slots = td["slots"][:, None].to(gpu_load.dtype)
    position = (td["i"][:, :1] % experts).to(gpu_load.dtype)
    remaining = loads[:, li].sum(-1, keepdim=True) - gpu_load.sum(-1, keepdim=True) - weight
    increase = (raise_ + incoming) / mean
    columns = [
        (weight / mean).expand_as(gpu_load),
        gpu_load / mean,
        raise_ / mean,
        incoming / mean,
        (incoming - cheapest).nan_to_num(0.0, 0.0, 0.0) / mean,
        gpu_share,
        node_share,
        affinity / slots,
        (slots - td["count"][:, li]) / slots,
        (position / experts).expand_as(gpu_load),
        (remaining / (mean * gpus)).expand_as(gpu_load),
        (busiest / mean).expand_as(gpu_load),
        scale.expand_as(gpu_load),
        torch.full_like(gpu_load, float(li == 0)),
    ]
    return torch.stack(columns, -1).float(), increase.float()


class _Block(nn.Module):
    """Each GPU's embedding updated from itself and the mean over the free GPUs."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.mix = nn.Sequential(
            nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)
        )
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weight = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * weight).sum(1, keepdim=True) / weight.sum(1, keepdim=True).clamp_min(1.0)
        return self.norm(x + self.mix(torch.cat([x, pooled.expand_as(x)], -1)))


class PlacementPolicy(nn.Module):
    """Chooses a GPU for each expert in turn; see the module docstring."""

    def __init__(self, config: PlacementModelConfig | None = None, train_samples: int = 8):
        super().__init__()
        self.config = config or PlacementModelConfig()
        hidden = self.config.hidden
        self.embed = nn.Sequential(
            nn.Linear(FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, hidden)
        )
        self.blocks = nn.ModuleList(_Block(hidden) for _ in range(self.config.blocks))
        self.head = nn.Linear(hidden, 1)
        self.prior = nn.Parameter(torch.tensor(PRIOR))
        #: Rollouts per instance in the ``train`` phase (the shared baseline's group).
        self.train_samples = train_samples

    def logits(self, td: TensorDict) -> torch.Tensor:
        """``(B, G)`` logits of the current step, ``-inf`` on full GPUs."""
        x, increase = features(td)
        mask = td["action_mask"]
        h = self.embed(x)
        for block in self.blocks:
            h = block(h, mask)
        logits = self.head(h).squeeze(-1) - self.prior * increase
        return logits.masked_fill(~mask, -torch.inf)

    def forward(
        self,
        td: TensorDict,
        env: PlacementEnv,
        phase: str = "train",
        decode_type: str | None = None,
        num_samples: int | None = None,
        select_best: bool = False,
        generator: torch.Generator | None = None,
        cut_short: Callable[[], bool] | None = None,
        **unused: Any,
    ) -> dict[str, torch.Tensor]:
        """Roll out a reset batch ``td``.

        ``train``: ``train_samples`` sampled rollouts per instance, ``reward`` and
        ``log_likelihood`` ``(B, S)``. Otherwise ``decode_type`` (``greedy`` by
        default, or one of :data:`DECODINGS`) with ``num_samples`` draws;
        ``select_best`` (or any decoding but a single greedy one) keeps each
        instance's best rollout: ``reward`` ``(B,)`` and ``actions`` ``(B, L, E)``.
        ``cut_short()`` is asked before every step; once it says so, the rollouts place
        their remaining experts by balancing alone, and ``cut_short`` is true in the output.
        """
        if phase == "train":
            samples = self.train_samples
            out = self._rollouts(td, env, samples, greedy=False, generator=generator)
            return {
                "reward": unbatchify(out["reward"], samples),
                "log_likelihood": unbatchify(out["log_likelihood"], samples),
            }
        decode_type = decode_type or "greedy"
        if decode_type not in DECODINGS:
            raise ValueError(f"decoding is {decode_type!r}, expected one of {', '.join(DECODINGS)}")
        samples = num_samples or 1
        candidates = []
        if decode_type in ("greedy", "both"):
            candidates.append(self._rollouts(td, env, 1, greedy=True, cut_short=cut_short))
        if decode_type in ("sampling", "both"):
            out = self._rollouts(
                td, env, samples, greedy=False, generator=generator, cut_short=cut_short
            )
            candidates.append(
                {
                    k: v if k == "cut_short" else unbatchify(v, samples)
                    for k, v in out.items()
                    if k != "log_likelihood"
                }  # fmt: skip
            )
        rewards = torch.cat([c["reward"].reshape(td.shape[0], -1) for c in candidates], 1)
        actions = torch.cat(
            [c["actions"].reshape(td.shape[0], -1, *c["actions"].shape[-2:]) for c in candidates],
            1,
        )
        best = rewards.argmax(1)
        rows = torch.arange(td.shape[0], device=rewards.device)
        return {
            "reward": rewards[rows, best],
            "actions": actions[rows, best],
            "all_rewards": rewards,
            "cut_short": any(c["cut_short"] for c in candidates),
        }

    def _rollouts(
        self,
        td: TensorDict,
        env: PlacementEnv,
        samples: int,
        greedy: bool,
        generator: torch.Generator | None = None,
        cut_short: Callable[[], bool] | None = None,
    ) -> dict[str, torch.Tensor]:
        if samples > 1:
            td = batchify(td, samples)
        log_likelihood = torch.zeros(td.shape[0], device=td.device)
        cut = False
        while not td["done"].all():
            if cut_short is not None and cut_short():
                td, cut = env.finish_balanced(td), True
                break
            logp = torch.log_softmax(self.logits(td), -1)
            if greedy:
                action = logp.argmax(-1)
            else:
                action = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(-1)
            log_likelihood = log_likelihood + logp.gather(1, action[:, None]).squeeze(1)
            td.set("action", action)
            td = env.step(td)["next"]
        reward = env.get_reward(td, td["placement"])
        return {"reward": reward, "log_likelihood": log_likelihood, "actions": td["placement"],
                "cut_short": cut}  # fmt: skip


@dataclass
class Decoded:
    """The best placement decoded for one instance."""

    placement: np.ndarray  # (L, E) GPU ids
    objective: float
    #: ``greedy`` or ``sample``: the rollout that gave it.
    source: str
    #: Rollouts decoded for the instance.
    rollouts: int


@torch.inference_mode()
def decode(
    policy: PlacementPolicy,
    instances: Sequence[PlacementInstance],
    decoding: str = "both",
    samples: int = 16,
    seed: int = 0,
    device: str | torch.device = "cpu",
    chunk: int = 8,
    keep_going: Callable[[list[float]], bool] | None = None,
    out_of_time: Callable[[], bool] | None = None,
) -> list[Decoded]:
    """Each instance's best placement among its rollouts (one batch of instances of one shape).

    ``greedy`` decodes once, ``sampling`` draws ``samples`` rollouts, ``both``
    does the two; samples are drawn ``chunk`` per instance at a time, and
    ``keep_going(best objectives so far)`` is asked after each batch of
    rollouts (the greedy one first): ``False`` stops there. Once ``out_of_time()`` says
    so, a rollout places its remaining experts by balancing alone
    (:meth:`~rota.envs.placement.PlacementEnv.finish_balanced`), and its source says so.
    """
    if decoding not in DECODINGS:
        raise ValueError(f"decoding is {decoding!r}, expected one of {', '.join(DECODINGS)}")
    env = PlacementEnv()
    base = to_tensordict(instances, device)
    generator = torch.Generator(device=device).manual_seed(seed)
    best: list[Decoded | None] = [None] * len(instances)

    def keep(out: dict[str, torch.Tensor], source: str, count: int) -> None:
        values = (-out["all_rewards"]).cpu().numpy()
        placements = out["actions"].cpu().numpy()
        for b, row in enumerate(values):
            k = int(np.argmin(row))
            done = count + (best[b].rollouts if best[b] is not None else 0)
            if best[b] is None or row[k] < best[b].objective:
                best[b] = Decoded(placements[b], float(row[k]), source, done)
            else:
                best[b].rollouts = done

    plan = []
    if decoding in ("greedy", "both"):
        plan.append(("greedy", 1))
    if decoding in ("sampling", "both"):
        plan += [("sampling", min(chunk, samples - k)) for k in range(0, samples, chunk)]
    for kind, count in plan:
        out = policy(env.reset(base.clone()), env, phase="test", decode_type=kind,
                     num_samples=count, generator=generator, cut_short=out_of_time)  # fmt: skip
        source = "greedy" if kind == "greedy" else "sample"
        if out["cut_short"]:
            source += ", cut short by the time limit and finished by balancing"
        keep(out, source, count)
        if keep_going is not None and not keep_going([d.objective for d in best]):
            break
    return best


@dataclass
class PlacementModel:
    """A loaded placement policy and what its card reports."""

    policy: PlacementPolicy
    config: PlacementModelConfig
    training: dict
    path: str


def save_model(
    path: str | Path, policy: PlacementPolicy, config: PlacementModelConfig, training: dict
) -> None:
    """Write a placement model file (``rota.neural/1``, problem ``placement``) atomically."""
    from rota.models.checkpoint import write_policy

    write_policy(path, PROBLEM, policy, config.as_dict(), training)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> PlacementModel:
    """Read a placement model file; anything else is a one-line :class:`FormatError`."""
    from rota.models.checkpoint import read_policy

    def build(payload: dict) -> tuple[PlacementModelConfig, PlacementPolicy]:
        config = PlacementModelConfig(**payload["config"])
        return config, PlacementPolicy(config)

    config, policy, payload = read_policy(path, (PROBLEM,), build, device)
    return PlacementModel(policy, config, dict(payload.get("training", {})), str(path))


__all__ = [
    "DECODINGS", "FEATURES", "PROBLEM", "Decoded", "PlacementModel", "PlacementModelConfig",
    "PlacementPolicy", "decode", "features", "load_model", "save_model",
]  # fmt: skip
