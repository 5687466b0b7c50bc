"""``neural``: the learned placer of :mod:`rota.models.placement`, decoding whole batches at once.

The model is the shipped one (``rota/models/checkpoints/placement-*.pt``) or
``model=PATH`` from ``rota train --problem placement``; its features do not
depend on the shape, so one model serves every shape (how well, the
benchmark says). Decoding: ``greedy`` (one rollout), ``sampling``
(``samples`` rollouts) or ``both`` (the default); the best rollout of each
instance is kept. Instances of one shape decode as one batch (``rota solve
many.jsonl --solver neural``), on a GPU when one is present (``device``).

Each batch of rollouts is one iteration of the stop; sampling goes on in
chunks of ``chunk`` rollouts per instance while the stop allows and the last
chunk's time still fits before the time limit. A rollout that reaches the
time limit stops choosing and places its remaining experts by balancing
alone (least-loaded GPU with a free slot, heaviest first), so a large
instance ends on time with a complete placement (``stats["chosen"]`` says
the rollout was cut short). The result is never worse
than contiguous placement: when no rollout beats it (an untrained or
ill-suited model), contiguous placement is returned and ``stats["chosen"]``
says so. No replicas: spare slots stay empty.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rota.problems.placement import PlacementInstance, PlacementSolution, contiguous
from rota.solvers.base import (
    ALL_CRITERIA,
    Capabilities,
    RequiresModules,
    Result,
    Status,
    finish,
    reconfigured,
)
from rota.solvers.neural import latest_shipped
from rota.solvers.stopping import Stop

DEVICES = ("auto", "cpu", "cuda")
#: :data:`rota.models.placement.DECODINGS`, named here so that listing solvers imports no torch.
DECODINGS = ("greedy", "sampling", "both")
_OPTION_NAMES = ("model", "decoding", "samples", "chunk", "device")


def shipped_model() -> Path | None:
    """The shipped placement model file, or ``None`` when there is none."""
    return latest_shipped("placement")


class NeuralPlacement(RequiresModules):
    """Batched decoding of a trained placement policy; see the module docstring.

    Parameters
    ----------
    model
        A model file; ``None``: the shipped one.
    decoding
        ``"greedy"``, ``"sampling"`` or ``"both"``.
    samples
        Sampled rollouts per instance (``sampling``, ``both``).
    chunk
        Sampled rollouts per instance decoded together (one iteration).
    device
        ``"auto"`` (CUDA when torch finds it), ``"cpu"`` or ``"cuda"``.
    """

    name = "neural"
    problem = "placement"
    description = "Learned placer (REINFORCE, rota train): one expert at a time, batched"
    capabilities = Capabilities(stopping=ALL_CRITERIA, batched=True, gpu=True)
    requires = ("torch", "rl4co", "tensordict")

    def __init__(
        self,
        model: str | None = None,
        decoding: str = "both",
        samples: int = 16,
        chunk: int = 8,
        device: str = "auto",
    ) -> None:
        if decoding not in DECODINGS:
            raise ValueError(
                f"neural option decoding={decoding!r} is not one of {', '.join(DECODINGS)}"
            )
        for option, value in (("samples", samples), ("chunk", chunk)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"neural option {option}={value!r} must be an integer >= 1")
        if device not in DEVICES:
            raise ValueError(f"neural option device={device!r} is not one of {', '.join(DEVICES)}")
        self.model, self.decoding, self.samples = model, decoding, samples
        self.chunk, self.device = chunk, device
        self._loaded: dict[str, Any] = {}

    def configure(self, **options: Any) -> NeuralPlacement:
        """A copy of this solver with ``options`` changed (unknown names fail, named)."""
        return reconfigured(self, _OPTION_NAMES, options)

    def _torch_device(self) -> str:
        import torch

        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("neural option device='cuda', but torch finds no CUDA device")
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def _model_path(self) -> Path | None:
        return Path(self.model) if self.model is not None else shipped_model()

    def _policy(self):
        from rota.models.placement import load_model

        path = self._model_path()
        key = str(path)
        if key not in self._loaded:
            self._loaded[key] = load_model(path, self._torch_device())
        return self._loaded[key]

    def supports(self, instance: PlacementInstance) -> str | None:
        if self._model_path() is None:
            return (
                "neural has no shipped placement model; train one with `rota train --problem "
                "placement` and pass -o model=PATH"
            )
        return None

    def solve(
        self,
        instance: PlacementInstance,
        stop: Stop,
        seed: int,
        warm_start: tuple[PlacementSolution, ...] = (),
    ) -> Result:
        return self.solve_batch([instance], stop, seed, [warm_start])[0]

    def solve_batch(
        self,
        instances: Sequence[PlacementInstance],
        stop: Stop,
        seed: int,
        warm_starts: Sequence = (),
    ) -> list[Result]:
        """Decode the instances, one batch per shape; each result through the evaluator."""
        from rota.envs.placement import shape_of, to_solution
        from rota.models.placement import decode
        from rota.solvers.placement.common import objective

        for inst in instances:
            reason = self.supports(inst)
            if reason is not None:
                raise ValueError(reason)
        model = self._policy()
        groups: dict[tuple[int, ...], list[int]] = {}
        for k, inst in enumerate(instances):
            groups.setdefault(shape_of(inst), []).append(k)
        decoded: dict[int, tuple[Any, float, int]] = {}
        for members in groups.values():
            started = time.perf_counter()
            found = decode(
                model.policy, [instances[k] for k in members], self.decoding, self.samples,
                seed % 2**63, self._torch_device(), self.chunk,
                keep_going=_Budget(stop, greedy_first=self.decoding == "both"),
                out_of_time=lambda: stop.out_of_time,
            )  # fmt: skip
            seconds = (time.perf_counter() - started) / len(members)
            for k, best in zip(members, found, strict=True):
                decoded[k] = (best, seconds, len(members))
        results = []
        for k, inst in enumerate(instances):
            best, seconds, batch = decoded[k]
            solution, chosen = to_solution(best.placement), f"policy ({best.source})"
            baseline = contiguous(inst)
            if objective(inst, baseline.as_array()) <= best.objective:
                solution, chosen = baseline, "contiguous"
            stats = {
                "model": model.path, "decoding": self.decoding, "rollouts": best.rollouts,
                "policy_objective": best.objective, "chosen": chosen,
                "device": self._torch_device(), "batch": batch,
                "decode_seconds_per_instance": seconds,
            }  # fmt: skip
            results.append(
                finish(
                    inst,
                    solution,
                    Status.FEASIBLE,
                    solver=self.name,
                    seed=seed,
                    stop=stop,
                    stats=stats,
                )  # fmt: skip
            )
        return results


class _Budget:
    """``keep_going`` for :func:`rota.models.placement.decode`: one iteration of the stop per
    batch of rollouts, and no sampling chunk that the last one's time says would end past
    the time limit."""

    def __init__(self, stop: Stop, greedy_first: bool) -> None:
        self.stop = stop
        self.batches = 0
        self.greedy_first = greedy_first
        self.last = time.perf_counter()

    def __call__(self, best: list[float]) -> bool:
        now = time.perf_counter()
        took, self.last = now - self.last, now
        self.batches += 1
        if self.stop(min(best)):
            return False
        timed_chunk = self.batches > (1 if self.greedy_first else 0)
        return not (timed_chunk and took > self.stop.remaining)


__all__ = ["DECODINGS", "NeuralPlacement", "shipped_model"]
