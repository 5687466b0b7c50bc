"""A batched expert-placement environment in rl4co's style: experts placed on GPUs one at a time.

:class:`PlacementEnv` steps a batch of ``B`` placement instances of one shape
(layers ``L``, experts ``E``, GPUs ``G``, ``slots`` per GPU) on the CPU or a
GPU. Each step puts one expert of one layer on a GPU, in a fixed order:
layer by layer, and within a layer by decreasing load (ties by expert id).

Layer by layer, because the objective couples only consecutive layers: when
an expert of layer ``l`` is placed, every expert of layer ``l - 1`` already
sits on its GPU, so the traffic from its predecessors is known exactly at the
moment of the choice. Heaviest first within a layer, as in the
longest-processing-time rule and EPLB's balanced packing: the big loads are
spread while every GPU still has room, and the light ones fill the gaps.

Observation (the TensorDict of a batch)
    ``loads`` ``(B, L, E)``, ``flows`` ``(B, L - 1, E, E)`` and ``hop``
    ``(B, G, G)`` in the instance's own units (float64); ``comm_weight``
    ``(B,)`` and ``slots`` ``(B,)``; ``order`` ``(B, L, E)``, the experts of
    every layer in placing order; and the state: ``placement`` ``(B, L, E)``
    (the GPU of every placed expert, ``-1`` before), ``gpu_load`` ``(B, L, G)``
    (tokens placed on each GPU), ``count`` ``(B, L, G)`` (experts placed on
    each GPU), ``i`` ``(B, 1)`` (the step; all instances of a batch move
    together: step ``i`` places the ``i % E``-th expert of ``order`` in layer
    ``i // E``) and ``action_mask`` ``(B, G)``.
Constraints
    every expert of every layer is placed on exactly one GPU (no replicas);
    no GPU holds more than ``slots`` experts of a layer: a full GPU is masked.
    Spare slots (``G * slots > E``) stay empty.
Finish condition
    all ``L * E`` experts are placed (every instance of a batch at once).
Reward
    minus the evaluator's objective of the decoded placement, in the
    instance's own units: the busiest GPU of every layer plus ``comm_weight``
    times the hop-weighted traffic, computed batched by
    :func:`rota.solvers.placement.ga_slots.batch_objective` (the ``ga``'s
    formula, tested against the evaluator). Never normalised: policies
    normalise their inputs themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from rl4co.envs.common.base import RL4COEnvBase
from rl4co.envs.common.utils import Generator
from tensordict import TensorDict
from torchrl.data import Bounded, Composite, Unbounded

from rota.problems.placement import PlacementInstance, PlacementSolution
from rota.solvers.placement.ga_slots import batch_objective

#: What must agree between the instances of one batch.
SHAPE_FIELDS = ("num_layers", "num_experts", "gpus", "nodes", "slots")


def shape_of(instance: PlacementInstance) -> tuple[int, ...]:
    """``(L, E, G, N, slots)``: instances batch together when these agree."""
    return tuple(int(getattr(instance, name)) for name in SHAPE_FIELDS)


def to_tensordict(
    instances: Sequence[PlacementInstance], device: str | torch.device = "cpu"
) -> TensorDict:
    """A batch TensorDict of instances of one shape (the static keys of the module docstring).

    Raises
    ------
    ValueError
        When there is no instance or the instances differ in shape (named).
    """
    if not instances:
        raise ValueError("no instances to batch")
    shapes = {shape_of(inst) for inst in instances}
    if len(shapes) > 1:
        described = ", ".join("x".join(str(v) for v in s) for s in sorted(shapes))
        raise ValueError(
            f"a batch holds instances of one shape (layers x experts x gpus x nodes x slots), "
            f"got {described}"
        )

    def stack(values: list[np.ndarray]) -> torch.Tensor:
        return torch.as_tensor(np.stack(values), dtype=torch.float64, device=device)

    return TensorDict(
        {
            "loads": stack([inst.loads for inst in instances]),
            "flows": stack([inst.flows for inst in instances]),
            "hop": stack([inst.hop for inst in instances]),
            "comm_weight": torch.tensor(
                [inst.comm_weight for inst in instances], dtype=torch.float64, device=device
            ),
            "slots": torch.tensor(
                [inst.slots for inst in instances], dtype=torch.int64, device=device
            ),
        },
        batch_size=[len(instances)],
        device=device,
    )


def to_solution(placement: torch.Tensor | np.ndarray) -> PlacementSolution:
    """The solution of one decoded ``(L, E)`` placement (GPU ids)."""
    array = placement.cpu().numpy() if isinstance(placement, torch.Tensor) else placement
    return PlacementSolution.from_array(np.asarray(array))


class PlacementGenerator(Generator):
    """Draws training batches from :func:`rota.data.placement.generate_instance`.

    Every instance of a call is a different model (its own seed) seen on
    its own batch of tokens, so training sees the popularity, affinity and
    domain shift of the generator's documented distribution; instances users
    generate come from the same code. ``options`` go to ``generate_instance``
    (``nodes``, ``slots``, ``tokens``, ...).
    """

    def __init__(
        self, experts: int, layers: int, gpus: int, top_k: int, seed: int = 0, **options: Any
    ):
        self.experts, self.layers, self.gpus, self.top_k = experts, layers, gpus, top_k
        self.options = options
        self._seeds = np.random.default_rng(seed)

    def instances(self, count: int) -> list[PlacementInstance]:
        from rota.data.placement import generate_instance

        seeds = self._seeds.integers(2**62, size=(count, 2))
        return [
            generate_instance(
                self.experts,
                self.layers,
                self.gpus,
                self.top_k,
                seed=int(s),
                batch=int(b),
                **self.options,
            )
            for s, b in seeds
        ]

    def _generate(self, batch_size) -> TensorDict:
        return to_tensordict(self.instances(int(np.prod(batch_size))))


class PlacementEnv(RL4COEnvBase):
    """A batch of placement instances, one expert placed per step (see the module docstring)."""

    name = "rota_placement"

    def __init__(
        self,
        generator: Generator | None = None,
        fixed_sets: dict[str, TensorDict] | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("check_solution", False)
        super().__init__(**kwargs)
        self.generator = generator
        #: Phases (``val``, ``test``) served from a fixed batch instead of the generator.
        self.fixed_sets = dict(fixed_sets or {})
        self._make_spec()

    def dataset(self, batch_size=None, phase="train", filename=None):
        if phase in self.fixed_sets:
            from rl4co.data.dataset import TensorDictDataset

            return TensorDictDataset(self.fixed_sets[phase])
        return super().dataset(batch_size, phase=phase, filename=filename)

    def _reset(self, td: TensorDict | None = None, batch_size=None) -> TensorDict:
        device = td.device
        batch = td.batch_size
        layers, experts = td["loads"].shape[-2:]
        gpus = td["hop"].shape[-1]
        # decreasing load, ties by expert id: a stable sort of the negated loads
        order = torch.sort(-td["loads"], dim=-1, stable=True).indices
        state = td.clone()
        state.update(
            {
                "order": order,
                "placement": torch.full(
                    (*batch, layers, experts), -1, dtype=torch.int64, device=device
                ),
                "gpu_load": torch.zeros((*batch, layers, gpus), dtype=torch.float64, device=device),
                "count": torch.zeros((*batch, layers, gpus), dtype=torch.int64, device=device),
                "i": torch.zeros((*batch, 1), dtype=torch.int64, device=device),
            }
        )
        state.set("action_mask", self.get_action_mask(state))
        state.set("done", torch.zeros((*batch, 1), dtype=torch.bool, device=device))
        state.set("reward", torch.zeros((*batch, 1), device=device))
        return state

    def _step(self, td: TensorDict) -> TensorDict:
        action = td["action"]
        layer, expert = current(td)
        rows = torch.arange(action.shape[0], device=action.device)
        # in place: a copy per step would cost O(L * E) a step, O((L * E)**2) a rollout
        td["placement"][rows, layer, expert] = action
        td["gpu_load"][rows, layer, action] += td["loads"][rows, layer, expert]
        td["count"][rows, layer, action] += 1
        step = td["i"] + 1
        layers, experts = td["loads"].shape[-2:]
        done = step >= layers * experts
        td.update({"i": step, "done": done, "reward": torch.zeros_like(done, dtype=torch.float32)})
        td.set("action_mask", self.get_action_mask(td))
        return td

    def finish_balanced(self, td: TensorDict) -> TensorDict:
        """Every expert not placed yet on the least-loaded GPU of its layer with a free slot.

        What a rollout cut short by its time limit does with the rest, in the
        same order (heaviest first: the longest-processing-time rule, EPLB's
        balancing without replicas). The current layer is finished step by
        step; the layers after it do not depend on each other, so they are
        filled together, one expert rank at a time.
        """
        layers, experts = td["loads"].shape[-2:]
        while not td["done"].all() and int(td["i"][0, 0]) % experts:
            td.set("action", self._least_loaded(td, current(td)[0]))
            td = self._step(td)
        first = int(td["i"][0, 0]) // experts
        if first >= layers:
            return td
        rows = torch.arange(td.shape[0], device=td.device)[:, None]
        rest = torch.arange(first, layers, device=td.device)[None, :]
        slots = td["slots"][:, None, None]
        for rank in range(experts):
            expert = td["order"][rows, rest, rank]
            full = td["count"][rows, rest] >= slots
            gpu = torch.where(full, torch.inf, td["gpu_load"][rows, rest]).argmin(-1)
            td["placement"][rows, rest, expert] = gpu
            td["gpu_load"][rows, rest, gpu] += td["loads"][rows, rest, expert]
            td["count"][rows, rest, gpu] += 1
        done = torch.ones_like(td["done"])
        td.update({"i": torch.full_like(td["i"], layers * experts), "done": done})
        td.set("action_mask", self.get_action_mask(td))
        return td

    def _least_loaded(self, td: TensorDict, layer: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(layer.shape[0], device=layer.device)
        load = torch.where(td["action_mask"], td["gpu_load"][rows, layer], torch.inf)
        return load.argmin(-1)

    def get_action_mask(self, td: TensorDict) -> torch.Tensor:
        """GPUs with a free slot in the current layer; after the last step, any GPU."""
        layers = td["loads"].shape[-2]
        layer = (td["i"][:, 0] // td["loads"].shape[-1]).clamp(max=layers - 1)
        rows = torch.arange(layer.shape[0], device=layer.device)
        free = td["count"][rows, layer] < td["slots"][:, None]
        finished = td["i"][:, :1] >= td["loads"].shape[-2] * td["loads"].shape[-1]
        return free | finished

    def _get_reward(self, td: TensorDict, actions: torch.Tensor) -> torch.Tensor:
        return -objective(td)

    def check_solution_validity(self, td: TensorDict, actions: torch.Tensor) -> None:
        if (td["placement"] < 0).any():
            raise AssertionError("an expert was left unplaced")
        if (td["count"] > td["slots"][:, None, None]).any():
            raise AssertionError("a GPU holds more experts than its slots")

    def _make_spec(self) -> None:
        self.observation_spec = Composite(shape=())
        self.action_spec = Bounded(shape=(1,), dtype=torch.int64, low=0, high=2**31 - 1)
        self.reward_spec = Unbounded(shape=(1,))
        self.done_spec = Unbounded(shape=(1,), dtype=torch.bool)


def current(td: TensorDict) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B,)`` layer and expert the current step places."""
    experts = td["loads"].shape[-1]
    step = td["i"][:, 0]
    layer = step // experts
    rows = torch.arange(step.shape[0], device=step.device)
    return layer, td["order"][rows, layer, step % experts]


def objective(td: TensorDict) -> torch.Tensor:
    """``(B,)`` evaluator objective of the batch's finished placements (float64)."""
    return batch_objective(td["loads"], td["flows"], td["hop"], td["comm_weight"], td["placement"])


__all__ = [
    "PlacementEnv", "PlacementGenerator", "SHAPE_FIELDS", "current", "objective", "shape_of",
    "to_solution", "to_tensordict",
]  # fmt: skip
