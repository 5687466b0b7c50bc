"""Seeded mixture-of-experts routing traces and the placement instances that summarise them.

No real routing traces can be downloaded where rota is built, so this module
draws synthetic ones whose statistics match what the placement literature
reports of real MoE models: skewed expert loads, strong inter-layer affinity
and a routing distribution that shifts between batches. The model is a latent
*topic* per token (the kind of text it belongs to):

1. **Expert popularity.** Layer ``l`` gives expert ``e`` a popularity
   ``exp(sigma_l * z)``, ``z ~ N(0, 1)``, with ``sigma_l`` uniform in
   ``popularity_sigma``. A log-normal share with parameter ``sigma`` has Gini
   coefficient ``2 * Phi(sigma / sqrt(2)) - 1`` (0.17 at ``sigma = 0.3``,
   0.52 at ``1.0``); the topics below add skew of their own. Load skew of
   per-layer Gini about 0.3-0.7, hot experts receiving several times the
   mean, is what motivates DeepSeek's EPLB replication of hot experts and
   MoETuner's load-balance term.
2. **Topics.** ``topics`` latent topics each prefer some experts in every
   layer: topic ``c`` routes to expert ``e`` of layer ``l`` with weight
   ``popularity[l, e] * exp(topic_sigma * y[l, c, e])``, ``y ~ N(0, 1)``. A
   token keeps its topic from one layer to the next with probability
   ``persistence`` (else it draws a new one), so tokens at expert ``i`` of
   layer ``l`` share a few topics and therefore a few preferred experts in
   layer ``l + 1``: the inter-layer affinity that ExFlow measures (a few
   next-layer experts receive most of an expert's tokens) and MoETuner's
   routing dependency exploits.
3. **Batches and domain shift.** A batch's topic mixture is
   ``(1 - drift) * base + drift * own``, both Dirichlet(1) draws: the base
   from the model seed, ``own`` from the batch. Batches of one seed share the
   model (popularities, topics) and differ in what their tokens are about,
   the shift between batches that placement must be robust to (ExFlow and
   MoETuner both note that expert popularity depends on the input domain).
4. **Routing.** Each token picks its ``top_k`` experts per layer without
   replacement in proportion to its topic's weights (Gumbel top-k).

Defaults: ``popularity_sigma = (0.3, 1.0)``, ``topic_sigma = 3.0``,
``topics = max(2, E // (2 * top_k))``, ``persistence = 0.9``, ``drift = 0.5``,
``tokens = 8192``. They were chosen (by measuring, not fitted to any solver)
so that the realised figures sit inside the published ranges; with seed 1,
:func:`trace_statistics` gives per-layer load Gini 0.38-0.67 and affinity
0.71 (8 experts, 32 layers, top-2), 0.52-0.65 and 0.52 (64 x 27, top-6),
0.51-0.64 and 0.48 (128 x 24, top-8), 0.51-0.63 and 0.39 (256 x 60, top-8),
where affinity is the share of an expert's next-layer token pairs that go to
its ``top_k`` most frequent successors (``top_k / E``, 0.03-0.25 here,
without affinity). ``rota data placement`` prints these figures for every
instance it writes. The GPU defaults are those of an H100 server: 450 GB/s
NVLink per direction within a node and 50 GB/s (400 Gb/s InfiniBand NDR)
per GPU between nodes.

Every number comes from ``numpy.random.default_rng`` seeded with ``(seed, ...)``:
the same arguments give the same trace, on any machine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from rota.files import require_memory
from rota.problems.placement.io import Trace, instance_from_trace, summarise
from rota.problems.placement.model import PlacementInstance

#: Most experts, layers and tokens a generated trace may have (a 256 x 60 top-8
#: model over 1M tokens is 480M ids, about 4 GB: beyond that use real traces).
MAX_EXPERTS = 4096
MAX_LAYERS = 1024
MAX_TOKENS = 10_000_000

#: Defaults, documented in the module docstring.
DEFAULTS: Mapping[str, Any] = {
    "tokens": 8192,
    "popularity_sigma": (0.3, 1.0),
    "topic_sigma": 3.0,
    "persistence": 0.9,
    "drift": 0.5,
}


def _int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} is {value!r}, expected an integer")
    if not low <= value <= high:
        raise ValueError(f"{name} is {value}, expected an integer in [{low}, {high}]")
    return int(value)


def _fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{name} is {value!r}, expected a number in [0, 1]")
    return float(value)


def default_topics(experts: int, top_k: int) -> int:
    """Two topics per ``2 * top_k`` experts (at least two): each topic's tokens then
    concentrate on about ``2 * top_k`` experts per layer."""
    return max(2, experts // (2 * top_k))


def generate_trace(
    experts: int,
    layers: int,
    top_k: int,
    *,
    tokens: int = DEFAULTS["tokens"],
    seed: int = 0,
    batch: int = 0,
    topics: int | None = None,
    popularity_sigma: tuple[float, float] = DEFAULTS["popularity_sigma"],
    topic_sigma: float = DEFAULTS["topic_sigma"],
    persistence: float = DEFAULTS["persistence"],
    drift: float = DEFAULTS["drift"],
) -> Trace:
    """A seeded routing trace: the ``top_k`` experts of every token in every layer.

    Parameters are those of the module docstring. ``seed`` fixes the model
    (popularities, topics, the base mixture); ``batch`` the tokens and the
    batch's own topic mixture.

    Raises
    ------
    ValueError
        A parameter out of range, named.
    ResourceError
        The trace would not fit in memory.
    """
    experts = _int("experts", experts, 1, MAX_EXPERTS)
    layers = _int("layers", layers, 1, MAX_LAYERS)
    top_k = _int("top_k", top_k, 1, experts)
    tokens = _int("tokens", tokens, 1, MAX_TOKENS)
    seed = _int("seed", seed, 0, 2**63 - 1)
    batch = _int("batch", batch, 0, 2**63 - 1)
    topics = (
        default_topics(experts, top_k) if topics is None else _int("topics", topics, 1, 1_000_000)
    )
    low, high = (float(s) for s in popularity_sigma)
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high <= 10):
        raise ValueError(
            f"popularity_sigma is {popularity_sigma!r}, expected 0 <= low <= high <= 10"
        )
    if isinstance(topic_sigma, bool) or not 0 <= float(topic_sigma) <= 10:
        raise ValueError(f"topic_sigma is {topic_sigma!r}, expected a number in [0, 10]")
    persistence = _fraction("persistence", persistence)
    drift = _fraction("drift", drift)
    # the ids, one (tokens, experts) score matrix, and the topic preferences at a time
    require_memory(
        8.0 * (tokens * layers * top_k + 3 * tokens * experts + 2 * layers * topics * experts),
        f"a trace of {tokens} tokens x {layers} layers x {experts} experts",
    )

    model = np.random.default_rng([seed, 0])
    sigma = model.uniform(low, high, size=layers)
    log_popularity = sigma[:, None] * model.standard_normal((layers, experts))
    log_weight = log_popularity[:, None, :] + topic_sigma * model.standard_normal(
        (layers, topics, experts)
    )
    base = model.dirichlet(np.ones(topics))
    rng = np.random.default_rng([seed, 1, batch])
    mixture = (1 - drift) * base + drift * rng.dirichlet(np.ones(topics))

    ids = np.empty((tokens, layers, top_k), dtype=np.int64)
    topic = rng.choice(topics, size=tokens, p=mixture)
    for li in range(layers):
        if li:
            switch = rng.random(tokens) >= persistence
            topic[switch] = rng.choice(topics, size=int(switch.sum()), p=mixture)
        scores = log_weight[li, topic] + rng.gumbel(size=(tokens, experts))
        if top_k < experts:
            ids[:, li] = np.argpartition(-scores, top_k - 1, axis=1)[:, :top_k]
        else:
            ids[:, li] = np.argsort(-scores, axis=1)
    return Trace(ids, experts)


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0: all equal; near 1: one holds all)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * total))


def trace_statistics(loads: np.ndarray, flows: np.ndarray, top_k: int) -> dict[str, float]:
    """The figures the generator is calibrated on, from an instance's counts.

    ``gini_*``: per-layer Gini of the expert loads (min, mean, max).
    ``affinity``: the share of an expert's next-layer pairs that go to its
    ``top_k`` most frequent successors, averaged over experts weighted by load
    (1: every token of an expert continues to the same ``top_k`` experts;
    ``top_k / E`` for routing without affinity).
    """
    ginis = [gini(row) for row in loads]
    stats = {"gini_min": min(ginis), "gini_mean": float(np.mean(ginis)), "gini_max": max(ginis)}
    if len(flows):
        top = np.sort(flows, axis=2)[:, :, -top_k:].sum(axis=2)
        out = flows.sum(axis=2)
        stats["affinity"] = float(top.sum() / out.sum()) if out.sum() else 0.0
    return stats


def generate_instance(
    experts: int,
    layers: int,
    gpus: int,
    top_k: int,
    *,
    nodes: int = 1,
    slots: int | None = None,
    bandwidth_intra: float = 450.0,
    bandwidth_inter: float = 50.0,
    comm_weight: float | None = None,
    name: str | None = None,
    **trace_options: Any,
) -> PlacementInstance:
    """A placement instance summarising :func:`generate_trace` (see there for ``trace_options``).

    The instance's ``metadata`` records every parameter and the figures of
    :func:`trace_statistics`.
    """
    trace = generate_trace(experts, layers, top_k, **trace_options)
    loads, flows = summarise(trace)
    options = {**DEFAULTS, "topics": default_topics(experts, top_k), "seed": 0, "batch": 0}
    options.update(trace_options)
    metadata = {
        "generator": "rota.data.placement",
        "experts": experts,
        "layers": layers,
        "top_k": top_k,
        **{k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
        **trace_statistics(loads, flows, top_k),
    }
    if name is None:
        name = f"moe-e{experts}-l{layers}-k{top_k}-g{gpus}-n{nodes}-s{options['seed']}"
        if options["batch"]:
            name += f"-b{options['batch']}"
    return instance_from_trace(
        trace, gpus, nodes=nodes, slots=slots, bandwidth_intra=bandwidth_intra,
        bandwidth_inter=bandwidth_inter, comm_weight=comm_weight, name=name, metadata=metadata,
    )  # fmt: skip


__all__ = [
    "DEFAULTS", "MAX_EXPERTS", "MAX_LAYERS", "MAX_TOKENS", "default_topics", "generate_instance",
    "generate_trace", "gini", "trace_statistics",
]  # fmt: skip
