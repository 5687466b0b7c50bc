"""An RRNCO-style policy for routing on road matrices, sized to train on a CPU and scale up.

After "Neural Combinatorial Optimization for Real-World Routing" (RRNCO; Son et
al.), written for rota's environments (:mod:`rota.envs.routing`):

- **Node embeddings** mix two views by contextual gating: the positions
  (``locs``) and the distances to and from ``ref_nodes`` sampled locations
  (rows and columns of the matrix, and of the duration matrix with time
  windows); a learned gate decides, per node and channel, how much of each.
- **Neural adaptive bias**: a small network turns, for every pair, the
  distance both ways, the bearing and (with time windows) the travel time
  into one attention bias, so the matrix, not only the positions, steers
  every layer and the decoder.
- **Attention-free encoder blocks** (AAFM, as in ICAM/RRNCO): each node
  aggregates the others weighted by ``exp(bias + key)``, which costs
  ``O(N^2 E)`` time and ``O(N^2)`` memory instead of multi-head attention's
  ``O(N^2 H)`` score tensors.
- **Pointer decoder**: a multi-head glimpse from the current node, the load
  and clock, then pointer logits plus the adaptive bias of the current node's
  row and a learned multiple of minus the distance onward (a nearest-neighbour
  prior, as distance-aware decoders such as ICAM's use); infeasible actions
  are masked by the environment.

Every input is normalised here (distances by the instance's largest, times
by its horizon); the environment's reward stays in the instance's units.
Width (``embed_dim``), depth (``num_layers``) and ``ref_nodes`` are
configurable: a few layers of width 64 train on a CPU, wider and deeper ones
on a GPU.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from rl4co.models.common.constructive.autoregressive import AutoregressivePolicy
from rl4co.models.common.constructive.base import ConstructiveDecoder, ConstructiveEncoder
from tensordict import TensorDict
from torch import nn

#: Initial weight of the decoder's distance prior (distances scaled to at most 1, logits
#: tanh-clipped at 10): the nearest clients start about e^3 times likelier than the next.
DISTANCE_PRIOR = 10.0


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a policy; stored in every checkpoint."""

    embed_dim: int = 64
    num_layers: int = 3
    num_heads: int = 4
    ff_hidden: int = 256
    ref_nodes: int = 16
    bias_hidden: int = 16
    timed: bool = False

    def __post_init__(self) -> None:
        for name in ("embed_dim", "num_layers", "num_heads", "ff_hidden", "ref_nodes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"embed_dim {self.embed_dim} is not a multiple of num_heads {self.num_heads}"
            )

    def as_dict(self) -> dict:
        return asdict(self)


def _scales(td: TensorDict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-instance distance scale (largest entry) and time scale (the horizon, else the
    largest travel time): ``(B, 1, 1)`` each."""
    distance = td["distance"]
    dist_scale = distance.flatten(1).amax(-1).clamp_min(1e-9)
    horizon = td["time_windows"][:, 0, 1]
    longest = td["duration"].flatten(1).amax(-1).clamp_min(1e-9)
    time_scale = torch.where(torch.isfinite(horizon), horizon, longest).clamp_min(1e-9)
    return dist_scale[:, None, None], time_scale[:, None, None]


def _node_features(td: TensorDict, time_scale: torch.Tensor) -> torch.Tensor:
    """Demand over capacity, window bounds and service time over the horizon, depot flag."""
    capacity = td["capacity"]
    capacity = torch.where(torch.isfinite(capacity), capacity, torch.ones_like(capacity))
    share = td["demand"] / capacity[:, None]
    windows = td["time_windows"]
    finite = torch.isfinite(windows)
    scaled = torch.where(finite, windows / time_scale, torch.ones_like(windows))
    service = td["service_time"] / time_scale[:, :, 0]
    depot = torch.zeros_like(share)
    depot[:, 0] = 1.0
    return torch.stack((share, scaled[..., 0], scaled[..., 1], service, depot), dim=-1)


class AdaptiveBias(nn.Module):
    """Per-pair attention bias from distance both ways, bearing and (timed) travel time."""

    def __init__(self, hidden: int, timed: bool):
        super().__init__()
        self.timed = timed
        self.net = nn.Sequential(
            nn.Linear(5 if timed else 4, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, td: TensorDict, dist_scale, time_scale) -> torch.Tensor:
        distance = td["distance"] / dist_scale
        locs = td["locs"]
        delta = locs[:, None, :, :] - locs[:, :, None, :]
        bearing = torch.atan2(delta[..., 1], delta[..., 0]) / math.pi
        features = [distance, distance.transpose(1, 2), torch.sin(bearing), torch.cos(bearing)]
        if self.timed:
            features.append(td["duration"] / time_scale)
        return self.net(torch.stack(features, dim=-1)).squeeze(-1)


class AAFMBlock(nn.Module):
    """Attention-free mixing with an additive pair bias, then a feed-forward layer."""

    def __init__(self, embed_dim: int, ff_hidden: int):
        super().__init__()
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.out = nn.Linear(embed_dim, embed_dim)
        self.bias_weight = nn.Parameter(torch.ones(()))
        self.norm1 = nn.LayerNorm(embed_dim)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.ff = nn.Sequential(
            nn.Linear(embed_dim, ff_hidden), nn.ReLU(), nn.Linear(ff_hidden, embed_dim)
        )

    def forward(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        scores = self.bias_weight * bias
        # exp(bias + key) factorises: stabilise each factor on its own.
        weights = torch.exp(scores - scores.amax(-1, keepdim=True))
        keys = torch.exp(k - k.amax(1, keepdim=True))
        mixed = (weights @ (keys * v)) / (weights @ keys).clamp_min(1e-30)
        h = self.norm1(h + self.out(torch.sigmoid(q) * mixed))
        return self.norm2(h + self.ff(h))


class RRNCOEncoder(ConstructiveEncoder):
    """Gated position/distance embeddings refined by AAFM blocks; returns the cache."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        e, k = config.embed_dim, config.ref_nodes
        self.config = config
        self.coord = nn.Linear(2, e)
        self.rows = nn.Linear((4 if config.timed else 2) * k, e)
        self.gate = nn.Linear(2 * e, e)
        self.features = nn.Linear(5, e)
        self.bias = AdaptiveBias(config.bias_hidden, config.timed)
        self.blocks = nn.ModuleList(
            AAFMBlock(e, config.ff_hidden) for _ in range(config.num_layers)
        )

    def _reference_rows(self, td: TensorDict, dist_scale, time_scale) -> torch.Tensor:
        n = td["distance"].shape[-1]
        k = self.config.ref_nodes
        # Evenly spaced indices: locations come in random order, so this is a random
        # sample, and the same one at training and inference.
        refs = torch.linspace(0, n - 1, k, device=td.device).round().long()
        views = [
            td["distance"][:, :, refs] / dist_scale,
            td["distance"][:, refs, :].transpose(1, 2) / dist_scale,
        ]
        if self.config.timed:
            views += [
                td["duration"][:, :, refs] / time_scale,
                td["duration"][:, refs, :].transpose(1, 2) / time_scale,
            ]
        return torch.cat(views, dim=-1)

    def forward(self, td: TensorDict):
        dist_scale, time_scale = _scales(td)
        coord = self.coord(td["locs"])
        rows = self.rows(self._reference_rows(td, dist_scale, time_scale))
        gate = torch.sigmoid(self.gate(torch.cat((coord, rows), dim=-1)))
        h = gate * coord + (1 - gate) * rows + self.features(_node_features(td, time_scale))
        bias = self.bias(td, dist_scale, time_scale)
        init = h
        for block in self.blocks:
            h = block(h, bias)
        return (h, bias, dist_scale, time_scale), init


class PointerDecoder(ConstructiveDecoder):
    """Glimpse from the current node and the vehicle's state, pointer logits plus bias."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        e = config.embed_dim
        self.heads = config.num_heads
        self.state = nn.Linear(3, e)
        self.query = nn.Linear(2 * e, e)
        self.glimpse_kv = nn.Linear(e, 2 * e)
        self.logit_key = nn.Linear(e, e)
        self.glimpse_out = nn.Linear(e, e)
        self.graph = nn.Linear(e, e)
        self.bias_weight = nn.Parameter(torch.ones(()))
        # A nearest-neighbour prior on the logits: training starts from a sensible
        # constructive (about NN's quality) instead of from random tours, which a
        # CPU's budget of steps would never leave far behind.
        self.distance_weight = nn.Parameter(torch.tensor(DISTANCE_PRIOR))
        self._cache: dict | None = None

    def pre_decoder_hook(self, td, env, hidden=None, num_starts: int = 0):
        h, bias, dist_scale, time_scale = hidden
        keys, values = self.glimpse_kv(h).chunk(2, dim=-1)
        # Multi-start copies of an instance share its encoding: rows index back by
        # ``row % B`` (rl4co stacks the copies as (start, instance)).
        self._cache = {
            "h": h, "bias": bias, "time_scale": time_scale, "dist_scale": dist_scale,
            "graph": self.graph(h.mean(1)),
            "keys": keys, "values": values, "logit_keys": self.logit_key(h),
        }  # fmt: skip
        return td, env, hidden

    def forward(self, td: TensorDict, hidden=None, num_starts: int = 0):
        cache = self._cache
        rows = td.batch_size[0]
        batch = cache["h"].shape[0]
        starts = rows // batch
        source = torch.arange(rows, device=td.device) % batch
        current = td["current_node"]
        capacity = td["capacity"]
        room = torch.where(
            torch.isfinite(capacity),
            (capacity - td["used_capacity"]) / capacity,
            torch.ones_like(capacity),
        )
        # The clock is a feature only under a horizon: without one it grows with the
        # route's length, unbounded, and would swamp the query.
        horizon = td["time_windows"][:, 0, 1]
        clock = torch.where(
            torch.isfinite(horizon),
            td["current_time"] / cache["time_scale"][source, 0, 0],
            torch.zeros_like(horizon),
        )
        progress = td["visited"].float().mean(-1)
        state = self.state(torch.stack((room, clock, progress), dim=-1))
        h_current = cache["h"][source, current]
        query = self.query(torch.cat((h_current, state), dim=-1)) + cache["graph"][source]

        # The copies of an instance (rows s * B + b) query its one set of keys
        # together: (B, starts, ...) against (B, N, ...), never a copy per row.
        def per_instance(x: torch.Tensor) -> torch.Tensor:
            return x.view(starts, batch, *x.shape[1:]).transpose(0, 1)

        keys, values = cache["keys"], cache["values"]
        n, e = keys.shape[1], keys.shape[2]
        d = e // self.heads
        q = per_instance(query).reshape(batch, starts, self.heads, d).transpose(1, 2)
        k = keys.view(batch, n, self.heads, d).transpose(1, 2)
        v = values.view(batch, n, self.heads, d).transpose(1, 2)
        mask = td["action_mask"]
        glimpse = F.scaled_dot_product_attention(q, k, v, attn_mask=per_instance(mask)[:, None])
        glimpse = self.glimpse_out(glimpse.transpose(1, 2).reshape(batch, starts, e))
        logits = glimpse @ cache["logit_keys"].transpose(1, 2) / math.sqrt(e)
        logits = logits.transpose(0, 1).reshape(rows, n)
        logits = logits + self.bias_weight * cache["bias"][source, current]
        rows_index = torch.arange(rows, device=td.device)
        onward = td["distance"][rows_index, current] / cache["dist_scale"][source, 0]
        logits = logits - self.distance_weight * onward
        return logits, mask


def build_policy(config: ModelConfig, env_name: str) -> AutoregressivePolicy:
    """The policy rl4co's POMO trains: our encoder and decoder, tanh-clipped logits."""
    return AutoregressivePolicy(
        RRNCOEncoder(config),
        PointerDecoder(config),
        env_name=env_name,
        tanh_clipping=10.0,
        train_decode_type="multistart_sampling",
        val_decode_type="multistart_greedy",
        test_decode_type="multistart_greedy",
    )
