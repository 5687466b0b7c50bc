"""The generations of the genetic solver ``ga``: crossover, mutation, local search, survivors.

The starting individuals (contiguous, EPLB, warm starts) are improved by the
swap local search and form the first population. A generation then makes
``offspring`` children: two parents by binary tournament, a block of layers
of the second put into the first (two-point crossover), one to ``L / 2``
random swaps (a strong kick: weaker ones let the population collapse into
clones of its best on 64 experts x 27 layers), and the local search.
Survivors are the best ``population`` of parents and children by fitness
(the objective; the weighted traffic with ``hops``), one of each value
(clones go), so the best is always kept.

GPUs are interchangeable (within a node, and nodes among themselves), so two
parents can place the same experts together under different GPU numbers.
Before its layers join the child, the second parent's block is renumbered by
a node-preserving GPU permutation (a symmetry: its own objective is
unchanged) chosen greedily to keep the most tokens on one GPU across the
block's two boundaries: nodes first, then the GPUs of every matched node.
Every layer of a child comes whole from one parent, so it keeps its slot
counts, its replicas and its cap.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rota.solvers.placement.ga_slots import Encoded, Scores, expert_shares, objective
from rota.solvers.placement.ga_swaps import local_search, random_swaps
from rota.solvers.stopping import Stop


@dataclass(frozen=True)
class Settings:
    population: int
    offspring: int


@dataclass
class Outcome:
    best: torch.Tensor  # (L, M) slots of the best individual
    objective: float
    generations: int
    local_search_steps: int
    improved: int  # generations that found a better best


def _greedy_match(weight: torch.Tensor) -> torch.Tensor:
    """``(B, K)``: for each column of ``weight`` (``(B, K, K)``, >= 0) its row, heaviest
    pairs first; ties go to the lowest indices."""
    batch, size, _ = weight.shape
    weight = weight.clone()
    target = torch.empty(batch, size, dtype=torch.int64, device=weight.device)
    index = torch.arange(batch, device=weight.device)
    for _ in range(size):
        flat = weight.view(batch, -1).argmax(1)
        row, col = flat // size, flat % size
        target[index, col] = row
        weight[index, row, :] = -torch.inf
        weight[index, :, col] = -torch.inf
    return target


def _boundary_traffic(
    enc: Encoded, upper: torch.Tensor, lower: torch.Tensor, layer: torch.Tensor
) -> torch.Tensor:
    """``(B, G, G)`` tokens from GPU ``g`` of ``upper``'s layer ``layer`` to GPU ``h`` of
    ``lower``'s layer ``layer + 1``."""
    index = torch.arange(len(layer), device=enc.device)
    source = expert_shares(enc, upper[index, layer])
    target = expert_shares(enc, lower[index, layer + 1])
    return source.transpose(1, 2) @ enc.flows[layer] @ target


def _alignment(
    enc: Encoded, first: torch.Tensor, second: torch.Tensor, start: torch.Tensor, end: torch.Tensor
) -> torch.Tensor:
    """``(B, G)``: the GPU of ``first`` that each GPU of ``second`` becomes (see the module
    docstring); ``second``'s layers ``[start, end)`` go into ``first``."""
    batch, layers = first.shape[:2]
    gpus, nodes = enc.gpus, enc.instance.nodes
    per_node = gpus // nodes
    kept = torch.zeros(batch, gpus, gpus, dtype=torch.float64, device=enc.device)
    if layers > 1:
        entry = _boundary_traffic(enc, first, second, (start - 1).clamp(min=0))
        kept += torch.where((start > 0)[:, None, None], entry, 0.0)
        leave = _boundary_traffic(enc, second, first, (end - 1).clamp(max=layers - 2))
        kept += torch.where((end < layers)[:, None, None], leave.transpose(1, 2), 0.0)
    blocks = kept.view(batch, nodes, per_node, nodes, per_node)
    node_of = _greedy_match(blocks.sum((2, 4)))  # (B, N): second's node -> first's node
    # for every node m of second, the block of first's node node_of[m] against it
    pairs = blocks.permute(0, 3, 1, 2, 4).gather(
        2, node_of[:, :, None, None, None].expand(-1, -1, 1, per_node, per_node)
    )
    local = _greedy_match(pairs.reshape(batch * nodes, per_node, per_node))
    return (node_of[:, :, None] * per_node + local.view(batch, nodes, per_node)).view(batch, gpus)


def crossover(
    enc: Encoded, first: torch.Tensor, second: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Children of ``first`` with a block of ``second``'s layers, renumbered; and the layers
    at the block's boundaries, which the local search must price."""
    batch, layers, width = first.shape
    device = enc.device
    start = torch.randint(layers, (batch,), generator=generator, device=device)
    span = torch.rand(batch, generator=generator, dtype=torch.float64, device=device)
    end = start + 1 + (span * (layers - start)).long().clamp(max=layers - start - 1)
    gpu_of = _alignment(enc, first, second, start, end)
    source = torch.empty_like(gpu_of).scatter_(
        1, gpu_of, torch.arange(enc.gpus, device=device).expand(batch, -1)
    )  # the GPU of second that lands on each GPU
    slot = (source[:, :, None] * enc.slots + torch.arange(enc.slots, device=device)).view(
        batch, width
    )
    renumbered = second.gather(2, slot[:, None, :].expand(-1, layers, -1))
    li = torch.arange(layers, device=device)[None]
    inside = (li >= start[:, None]) & (li < end[:, None])
    child = torch.where(inside[..., None], renumbered, first)
    near_start = ((li == start[:, None] - 1) | (li == start[:, None])) & (start[:, None] > 0)
    near_end = ((li == end[:, None] - 1) | (li == end[:, None])) & (end[:, None] < layers)
    return child, near_start | near_end


def _survivors(
    enc: Encoded, population: torch.Tensor, scores: Scores, size: int
) -> tuple[torch.Tensor, Scores]:
    """The best ``size`` of ``population`` by fitness, one per value (clones last)."""
    values = scores.fitness
    order = torch.sort(values, stable=True).indices
    ranked = values[order]
    clone = torch.zeros_like(ranked, dtype=torch.bool)
    clone[1:] = ranked[1:] - ranked[:-1] <= enc.tolerance
    keep = order[torch.sort(clone.to(torch.int8), stable=True).indices][:size]
    return population[keep], scores.take(keep)


def _tournament(values: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    pick = torch.randint(len(values), (2, count), generator=generator, device=values.device)
    return torch.where(values[pick[0]] <= values[pick[1]], pick[0], pick[1])


def evolve(
    enc: Encoded,
    starts: torch.Tensor,
    stop: Stop,
    seed: int,
    settings: Settings,
) -> Outcome:
    """Evolve from ``starts`` (``(S, L, M)`` feasible individuals) until ``stop``.

    An iteration of the stop is one generation (shown the best individual's
    objective); the first population is built before the first. The result's
    fitness is never worse than the best start's.
    """
    generator = torch.Generator(device=enc.device)
    generator.manual_seed(seed)

    def expired() -> bool:
        return stop.out_of_time or stop.interrupted

    population = starts.clone()
    dirty = torch.ones(population.shape[:2], dtype=torch.bool, device=enc.device)
    steps = local_search(enc, population, dirty, expired)
    population, scores = _survivors(
        enc, population, objective(enc, population), settings.population
    )
    mutations = max(1, enc.layers // 2)
    generations = improved = 0
    while not expired():
        first = population[_tournament(scores.fitness, settings.offspring, generator)]
        second = population[_tournament(scores.fitness, settings.offspring, generator)]
        children, dirty = crossover(enc, first, second, generator)
        count = torch.randint(
            1, mutations + 1, (settings.offspring,), generator=generator, device=enc.device
        )
        random_swaps(enc, children, dirty, count, generator)
        steps += local_search(enc, children, dirty, expired)
        best = float(scores.fitness[0])
        population, scores = _survivors(
            enc,
            torch.cat([population, children]),
            scores.cat(objective(enc, children)),
            settings.population,
        )
        generations += 1
        improved += float(scores.fitness[0]) < best - enc.tolerance
        if stop(float(scores.objective[0])):
            break
    return Outcome(population[0], float(scores.objective[0]), generations, steps, improved)


__all__ = ["Outcome", "Settings", "crossover", "evolve"]
