"""``neural`` for contact scheduling: the trained policy of :mod:`rota.models.contacts`.

The policy chooses the order of the requests; the environment
(:mod:`rota.envs.contacts`) places each with greedy's rule, so every
schedule is feasible. The model is the shipped one
(``rota/models/checkpoints/contacts-*.pt``, the newest by name) or
``model=PATH`` (a ``model.pt`` from ``rota train --problem contacts``).

Decoding: ``greedy`` (one rollout, the policy's argmax at each step) or
``sampling``: the greedy rollout, then up to ``samples`` sampled ones in
chunks of 16, while the time limit allows another chunk (each chunk is one
stop iteration; the time a chunk takes is measured on the first and a chunk
that would overrun the limit is not started). The greedy rollout stops
choosing when the time limit is reached: the requests it has not chosen yet
are taken in greedy's order (``stats["solution_from"]`` says so), so a
large instance ends on time with a complete schedule. A list of instances
decodes as one padded batch on ``device``.

With ``greedy_floor=True`` (the default) greedy's schedule is built too and
returned when it is better; ``stats["solution_from"]`` then says so, and
``stats["policy_objective"]`` always holds the policy's own best, so the
policy's figures are never hidden behind greedy's. The status is
``FEASIBLE``; there is no bound.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from rota.problems.contacts import ContactInstance, ContactSolution
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

OPTIONS = ("model", "decoding", "samples", "device", "greedy_floor")
#: Sampled rollouts per instance in one iteration.
CHUNK = 16


def shipped_model() -> Path | None:
    """The shipped contacts model file (the last by name), if any."""
    return latest_shipped("contacts")


class NeuralContacts(RequiresModules):
    """The trained contacts policy, decoded in batches (see the module docstring)."""

    name = "neural"
    problem = "contacts"
    description = (
        "Attention policy over requests and antennas ordering greedy's placements "
        "(rota train --problem contacts); batched"
    )
    capabilities = Capabilities(stopping=ALL_CRITERIA, batched=True, gpu=True)
    requires = ("torch", "rl4co", "tensordict")

    def __init__(
        self,
        model: str | None = None,
        decoding: str = "sampling",
        samples: int = 64,
        device: str = "auto",
        greedy_floor: bool = True,
    ) -> None:
        if decoding not in ("greedy", "sampling"):
            raise ValueError(f"neural option decoding={decoding!r}: expected greedy or sampling")
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"neural option samples={samples!r} must be an integer >= 1")
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"neural option device={device!r}: expected auto, cpu or cuda")
        if not isinstance(greedy_floor, bool):
            raise ValueError(f"neural option greedy_floor={greedy_floor!r} must be true or false")
        self.model, self.decoding, self.samples = model, decoding, samples
        self.device, self.greedy_floor = device, greedy_floor
        self._loaded: dict[str, object] = {}

    def configure(self, **options) -> NeuralContacts:
        return reconfigured(self, OPTIONS, options)

    def _torch_device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def _path(self) -> Path | None:
        return Path(self.model) if self.model is not None else shipped_model()

    def _load(self):
        from rota.models.contacts import load_model

        path = self._path()
        if path is None:
            raise ValueError(
                "neural has no shipped contacts model; train one with `rota train --problem "
                "contacts` and pass -o model=PATH"
            )
        key = str(path)
        if key not in self._loaded:
            self._loaded[key] = load_model(path, self._torch_device())
        return self._loaded[key]

    def supports(self, instance: ContactInstance) -> str | None:
        from rota.solvers.contacts.encoding import encode

        try:
            encode(instance)
            self._load()
        except ValueError as exc:
            return str(exc)
        return None

    def solve(
        self, instance: ContactInstance, stop: Stop, seed: int, warm_start: Sequence = ()
    ) -> Result:
        return self.solve_batch([instance], stop, seed, [warm_start])[0]

    def solve_batch(
        self,
        instances: Sequence[ContactInstance],
        stop: Stop,
        seed: int,
        warm_starts: Sequence = (),
    ) -> list[Result]:
        """Decode every instance in one padded batch; ``stop`` holds the whole batch's budget."""
        from rota.envs.contacts import prepare
        from rota.models.contacts import decode
        from rota.solvers.contacts.encoding import encode
        from rota.solvers.contacts.greedy import construct, improves, objective_of

        model = self._load()
        prepared = [prepare(instance) for instance in instances]
        started = time.perf_counter()
        clock = {"last": started, "chunk": 0.0}

        def keep_going() -> bool:
            """Called after the greedy rollout and after each chunk: one iteration each."""
            now = time.perf_counter()
            took = now - clock["last"]
            # before the first chunk only one rollout per instance is timed: count it 16 times
            clock["chunk"] = max(clock["chunk"], took if clock["chunk"] else took * CHUNK)
            clock["last"] = now
            if stop(None):
                return False
            if stop.remaining <= clock["chunk"]:
                stop.stopped_by = "time"  # the next chunk would end past the limit
                return False
            return True

        found = decode(
            model, prepared, self.decoding, self.samples, seed, self._torch_device(),
            chunk=CHUNK, keep_going=keep_going, out_of_time=lambda: stop.out_of_time,
        )  # fmt: skip
        if self.decoding == "greedy":
            stop(None)  # the one rollout is the one iteration
        seconds = (time.perf_counter() - started) / len(instances)
        results = []
        for instance, best in zip(instances, found, strict=True):
            solution: ContactSolution = best.solution
            objective = best.objective
            stats = {
                "model": str(self._path()), "decoding": self.decoding,
                "rollouts": best.rollouts, "policy_objective": best.objective,
                "solution_from": best.source, "device": self._torch_device(),
                "batch": len(instances), "decode_seconds_per_instance": seconds,
            }  # fmt: skip
            if self.greedy_floor:
                greedy = construct(instance, encode(instance))
                stats["greedy_objective"] = greedy_objective = objective_of(instance, greedy)
                if improves(greedy_objective, objective):
                    solution, objective = greedy, greedy_objective
                    stats["solution_from"] = "greedy (better than the policy's)"
            results.append(
                finish(
                    instance,
                    solution,
                    Status.FEASIBLE,
                    solver=self.name,
                    seed=seed,
                    stop=stop,
                    backend_objective=objective,
                    stats=stats,
                )  # fmt: skip
            )
        return results


__all__ = ["NeuralContacts", "shipped_model"]
