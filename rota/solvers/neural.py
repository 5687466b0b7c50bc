"""``neural``: the RRNCO-style policy of :mod:`rota.models`, decoding whole batches at once.

The model is a shipped one (``rota/models/checkpoints/PROBLEM+NODES.pt``, the
one of the instance's problem nearest its size) or ``checkpoint=PATH`` from
``rota train``. Decoding: ``greedy`` (one sequence), ``multistart`` (one
from every client, POMO) or ``sampling`` (``samples`` sequences), each on
the 8 dihedral transforms of the positions with ``augment=8`` (POMO's x8), or
on 8 for each of ``augment / 8`` rotations with a larger multiple of 8. The best
sequence of each instance goes through the evaluator like every solver's.

Instances of one problem and size decode as one batch (``rota solve
many.jsonl --solver neural``), in chunks of bounded memory
(:data:`rota.models.checkpoint.ROLLOUT_ROWS`); on a GPU when one is present
(``device``).
One decode is one iteration: it runs to its end whatever the stop says.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from rota.problems.routing import RoutingInstance
from rota.solvers.base import ALL_CRITERIA, RequiresModules, Result, Status, finish, reconfigured
from rota.solvers.routing import RoutingCapabilities
from rota.solvers.stopping import Stop

#: Where shipped model files live (package data).
CHECKPOINTS = Path(__file__).resolve().parents[1] / "models" / "checkpoints"
OPTIONS = ("checkpoint", "decoding", "augment", "samples", "device")


def latest_shipped(prefix: str) -> Path | None:
    """The last shipped model file named ``PREFIX-*.pt`` (the contacts and placement
    models), or ``None`` when there is none."""
    found = sorted(CHECKPOINTS.glob(f"{prefix}-*.pt"))
    return found[-1] if found else None


def shipped_models() -> dict[str, list[tuple[int, Path]]]:
    """Shipped model files by problem: ``{problem: [(nodes, path), ...]}``."""
    import re

    found: dict[str, list[tuple[int, Path]]] = {}
    for path in sorted(CHECKPOINTS.glob("*.pt")):
        match = re.fullmatch(r"([a-z]+?)(\d+)", path.stem)
        if match:
            found.setdefault(match.group(1), []).append((int(match.group(2)), path))
    return found


class NeuralSolver(RequiresModules):
    """Batched decoding of a trained routing policy (see the module docstring)."""

    name = "neural"
    problem = "routing"
    description = "RRNCO-style policy trained by POMO (rota train); batched, on a GPU when present"
    capabilities = RoutingCapabilities(
        stopping=ALL_CRITERIA, time_windows=True, batched=True, gpu=True
    )
    requires = ("torch", "rl4co", "tensordict")

    def __init__(
        self,
        checkpoint: str | None = None,
        decoding: str = "multistart",
        augment: int = 8,
        samples: int = 64,
        device: str = "auto",
    ):
        from rota.models.checkpoint import DECODINGS, check_augment

        if decoding not in DECODINGS:
            raise ValueError(f"decoding is {decoding!r}, expected one of {', '.join(DECODINGS)}")
        if int(samples) < 1:
            raise ValueError(f"samples must be a positive integer, got {samples!r}")
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device is {device!r}, expected auto, cpu or cuda")
        self.checkpoint, self.decoding = checkpoint, decoding
        self.augment, self.samples, self.device = check_augment(augment), int(samples), device
        self._models: dict[str, object] = {}

    def configure(self, **options) -> NeuralSolver:
        return reconfigured(self, OPTIONS, options)

    def _torch_device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def _model_path(self, instance: RoutingInstance) -> tuple[Path | None, str | None]:
        from rota.envs.routing import env_problem

        if self.checkpoint is not None:
            return Path(self.checkpoint), None
        problem = env_problem(instance)
        models = shipped_models().get(problem, [])
        if not models:
            return None, (
                f"neural has no shipped model for {problem}; train one with `rota train "
                f"--problem {problem}` and pass -o checkpoint=PATH"
            )
        clients = instance.num_clients if problem != "atsp" else instance.num_locations
        return min(models, key=lambda m: abs(m[0] - clients))[1], None

    def _model(self, path: Path):
        from rota.models.checkpoint import load_model

        key = str(path)
        if key not in self._models:
            self._models[key] = load_model(path, self._torch_device())
        return self._models[key]

    def supports(self, instance: RoutingInstance) -> str | None:
        from rota.envs.routing import env_problem, unsupported

        reason = unsupported(instance, self.name)
        if reason is not None:
            return reason
        path, reason = self._model_path(instance)
        if reason is not None:
            return reason
        model = self._model(path)
        problem = env_problem(instance)
        # A symmetric Euclidean CVRP is an ACVRP whose matrix happens to be symmetric.
        if model.problem != problem and {model.problem, problem} != {"acvrp", "cvrp"}:
            return f"model {path} is trained on {model.problem}, not {problem}"
        clients = instance.num_locations if problem == "atsp" else instance.num_clients
        return model.size_reason(clients)

    def candidates(
        self, instances: Sequence[RoutingInstance], keep: int, seed: int
    ) -> list[list[tuple]]:
        """Up to ``keep`` distinct decoded sequences per instance with their costs, cheapest
        first (seeds for a search; see :func:`rota.models.checkpoint.decode_candidates`)."""
        from rota.models.checkpoint import decode_candidates

        found: list[list[tuple]] = [[] for _ in instances]
        for path, members in self._groups(instances).items():
            batch = [instances[k] for k in members]
            model = self._model(Path(path[0]))
            decoded = decode_candidates(
                model, batch, keep, self.decoding, self.augment, self.samples, seed,
                self._torch_device(),
            )  # fmt: skip
            for k, kept in zip(members, decoded, strict=True):
                found[k] = kept
        return found

    def _groups(self, instances: Sequence[RoutingInstance]) -> dict[tuple[str, int], list[int]]:
        """Instance indices by (model file, size): each group decodes as one batch."""
        groups: dict[tuple[str, int], list[int]] = {}
        for k, inst in enumerate(instances):
            path, reason = self._model_path(inst)
            if reason is not None:
                raise ValueError(reason)
            groups.setdefault((str(path), inst.num_locations), []).append(k)
        return groups

    def solve(
        self, instance: RoutingInstance, stop: Stop, seed: int, warm_start: Sequence = ()
    ) -> Result:
        return self.solve_batch([instance], stop, seed, [warm_start])[0]

    def solve_batch(
        self, instances: Sequence[RoutingInstance], stop: Stop, seed: int, warm_starts: Sequence
    ) -> list[Result]:
        """Decode instances grouped by model and size, one batch per group."""
        from rota.envs.routing import to_solution
        from rota.models.checkpoint import decode

        decoded: dict[int, tuple] = {}
        for (path, _), members in self._groups(instances).items():
            model = self._model(Path(path))
            started = time.perf_counter()
            best = decode(
                model, [instances[k] for k in members], self.decoding, self.augment,
                self.samples, seed, self._torch_device(),
            )  # fmt: skip
            seconds = (time.perf_counter() - started) / len(members)
            for k, (actions, _) in zip(members, best, strict=True):
                decoded[k] = (actions, path, seconds, len(members))
        stop(None)
        results = []
        for k, inst in enumerate(instances):
            actions, path, seconds, batch = decoded[k]
            stats = {
                "model": path, "decoding": self.decoding, "augment": self.augment,
                "device": self._torch_device(), "batch": batch,
                "decode_seconds_per_instance": seconds,
            }  # fmt: skip
            solution, status = None, Status.NO_SOLUTION
            if actions is None:
                stats["reason"] = "every decoded plan needs more vehicles than the fleet has"
            else:
                solution, status = to_solution(actions), Status.FEASIBLE
            results.append(finish(inst, solution, status, solver=self.name, seed=seed,
                                  stop=stop, stats=stats))  # fmt: skip
        return results
