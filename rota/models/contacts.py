"""The contact-scheduling policy: attention over requests and antennas, one request a step.

Encoder (once per instance)
    Requests and antennas are tokens (their static features, see
    :mod:`rota.envs.contacts`). Each layer lets a request attend to the
    requests it competes with (a shared antenna or spacecraft over
    overlapping spans; a mask, so no position or clock enters the model and a
    week shifted in time looks the same), a request to the antennas it can
    use, and an antenna to the requests that can use it.
Decoder (every step)
    A request's key is its embedding plus what changed: its remaining fit
    (over the requested and the initial), the busy fraction of its antennas,
    and the fit its competitors still need (relative to its own duration). A
    query from the mean key of the requests still open, the antennas' mean
    busy fraction and the share of requests decided scores every request
    with a small network; requests that fit nowhere are masked.

The schedule itself is built by the environment (greedy's placement), so
every decoding is feasible; the policy only chooses the order. Decodings:
``greedy`` (argmax), ``sampling`` (``samples`` rollouts per instance) and
their best (``select_best``). In training (``phase="train"``) it samples
``train_samples`` rollouts per instance and returns ``reward`` and
``log_likelihood`` shaped ``(B, S)``, so that rl4co's shared baseline is the
mean over an instance's samples (POMO-style).

Model files are ``rota.neural/1`` files of problem ``contacts``
(:func:`rota.models.checkpoint.write_policy`): the config, the weights and
the training record.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rl4co.utils.ops import batchify, unbatchify
from torch import nn
from torch.nn import functional as F

from rota.envs.contacts import ANTENNA_FEATURES, REQUEST_FEATURES
from rota.models.checkpoint import read_policy, write_policy

#: Dynamic request features the decoder adds to the keys.
DYNAMIC_FEATURES = ("fit / requested", "fit / initial fit", "busy share of its antennas",
                    "log1p(competitors' fit / requested) / 5")  # fmt: skip
#: Logits are ``CLIP * tanh(score)``, as attention models clip their pointers.
CLIP = 10.0
DECODINGS = ("greedy", "sampling")
#: The ``problem`` of this family's model files.
PROBLEM = "contacts"


@dataclass(frozen=True)
class ContactsConfig:
    """Size of the policy; the defaults train on a 2-core CPU in minutes."""

    embed_dim: int = 64
    num_layers: int = 2
    num_heads: int = 4
    ff_hidden: int = 128
    #: Rollouts per instance in training (the shared baseline's group).
    train_samples: int = 8

    def __post_init__(self) -> None:
        for name in ("embed_dim", "num_layers", "num_heads", "ff_hidden", "train_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"config field {name!r} must be a positive integer, got {value!r}")
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"config field 'embed_dim' ({self.embed_dim}) must be a multiple of "
                f"'num_heads' ({self.num_heads})"
            )
        if self.train_samples < 2:
            raise ValueError(
                f"config field 'train_samples' is {self.train_samples}: the shared baseline "
                "needs at least 2 rollouts per instance"
            )

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Attention(nn.Module):
    """Pre-norm multi-head attention of ``x`` over ``memory`` where ``allowed``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.memory_norm = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, 2 * dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q = self.q(self.norm(x)).view(b, n, self.heads, -1).transpose(1, 2)
        k, v = self.kv(self.memory_norm(memory)).chunk(2, dim=-1)
        k = k.view(b, memory.shape[1], self.heads, -1).transpose(1, 2)
        v = v.view(b, memory.shape[1], self.heads, -1).transpose(1, 2)
        # a token with nothing to attend to (padding, an unused antenna) attends to all
        allowed = allowed | ~allowed.any(-1, keepdim=True)
        mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed[:, None])
        return x + self.out(mixed.transpose(1, 2).reshape(b, n, d))


class _FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class _Layer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.requests = _Attention(dim, heads)
        self.request_antennas = _Attention(dim, heads)
        self.antenna_requests = _Attention(dim, heads)
        self.request_ff = _FeedForward(dim, hidden)
        self.antenna_ff = _FeedForward(dim, hidden)

    def forward(self, h, g, competes, incidence):
        h = self.requests(h, h, competes)
        h = self.request_antennas(h, g, incidence)
        g = self.antenna_requests(g, h, incidence.transpose(1, 2))
        return self.request_ff(h), self.antenna_ff(g)


class ContactsPolicy(nn.Module):
    """The policy of the module docstring; ``forward`` rolls out a whole batch."""

    def __init__(self, config: ContactsConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ContactsConfig()
        d = config.embed_dim
        self.request_in = nn.Linear(len(REQUEST_FEATURES), d)
        self.antenna_in = nn.Linear(len(ANTENNA_FEATURES), d)
        self.layers = nn.ModuleList(
            _Layer(d, config.num_heads, config.ff_hidden) for _ in range(config.num_layers)
        )
        self.norm = nn.LayerNorm(d)
        self.dynamic = nn.Linear(len(DYNAMIC_FEATURES), d)
        self.context = nn.Linear(d + 2, d)
        self.key_hidden = nn.Linear(d, config.ff_hidden)
        self.query_hidden = nn.Linear(d, config.ff_hidden, bias=False)
        self.score = nn.Linear(config.ff_hidden, 1)

    def encode(self, td) -> torch.Tensor:
        """Request embeddings ``(B, N, d)``."""
        h = self.request_in(td["request_features"])
        g = self.antenna_in(td["antenna_features"])
        for layer in self.layers:
            h, g = layer(h, g, td["competes"], td["incidence"])
        return self.norm(h)

    def static(self, td, embeddings: torch.Tensor) -> dict[str, torch.Tensor]:
        """What every step of a rollout reuses: float copies of the masks and the keys'
        share of the scoring network (it is linear in the key)."""
        incidence = td["incidence"].float()
        return {
            "embeddings": embeddings,
            "hidden": self.key_hidden(embeddings),
            "incidence": incidence,
            "antennas": incidence.sum(-1).clamp(min=1),
            "competes": td["competes"].float(),
            "duration": td["duration"].float().clamp(min=1),
        }

    def logits(self, td, static: dict[str, torch.Tensor]) -> torch.Tensor:
        """Masked logits ``(R, N)`` of the next request of every row."""
        busy = torch.bmm(static["incidence"], td["busy"][..., None]).squeeze(-1)
        duration = static["duration"]
        remaining = td["fit"] * duration
        competing = torch.bmm(static["competes"], remaining[..., None]).squeeze(-1) - remaining
        dynamic = torch.stack(
            (td["fit"], td["fit_left"], busy / static["antennas"],
             torch.log1p(competing / duration) / 5), dim=-1,
        )  # fmt: skip
        keys = static["embeddings"] + self.dynamic(dynamic)
        mask = td["action_mask"]
        open_ = mask.float()[..., None]
        mean_key = (keys * open_).sum(1) / open_.sum(1).clamp(min=1)
        valid = td["antenna_valid"].float()
        mean_busy = (td["busy"] * valid).sum(-1) / valid.sum(-1).clamp(min=1)
        decided = td["i"].float().squeeze(-1) / td["request_valid"].float().sum(-1)
        query = self.context(torch.cat((mean_key, mean_busy[:, None], decided[:, None]), -1))
        # key_hidden(keys), with the embeddings' share computed once per rollout
        weight = self.key_hidden.weight
        dynamic_hidden = F.linear(dynamic, weight @ self.dynamic.weight, weight @ self.dynamic.bias)
        hidden = F.relu(static["hidden"] + dynamic_hidden + self.query_hidden(query)[:, None])
        scores = CLIP * torch.tanh(self.score(hidden).squeeze(-1))
        return scores.masked_fill(~mask, -math.inf)

    def forward(
        self,
        td,
        env,
        phase: str = "train",
        select_best: bool = False,
        decode_type: str | None = None,
        num_samples: int | None = None,
        return_actions: bool = False,
        cut_short: Callable[[], bool] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        """Roll out ``td`` (as reset by ``env``); see the module docstring for the decodings.

        ``cut_short()`` is asked before every step; once it says so, the rows
        still running take their remaining requests in greedy's order
        (:meth:`~rota.envs.contacts.ContactsEnv.finish_in_greedy_order`), and
        ``out["cut_short"]`` is true.

        Returns ``reward`` (``(B, S)`` when sampling ``S > 1`` without ``select_best``,
        else ``(B,)``), ``log_likelihood`` of the same shape, ``objective`` (float64,
        ``(B, S)`` or ``(B,)``), ``max_reward`` ``(B,)``, and with ``return_actions`` the
        ``actions`` ``(R, T)`` (``R = S * B`` rows in rl4co's batchify order) and ``td``.
        """
        if decode_type is None:
            decode_type = "sampling" if phase == "train" else "greedy"
        if decode_type not in DECODINGS:
            raise ValueError(f"decoding is {decode_type!r}, expected one of {', '.join(DECODINGS)}")
        samples = 1
        if decode_type == "sampling":
            samples = num_samples or (self.config.train_samples if phase == "train" else 1)
        batch = td.batch_size[0]
        embeddings = self.encode(td)
        if samples > 1:
            td = env.reset(batchify(td, samples))
            embeddings = batchify(embeddings, samples)
        rows = td.batch_size[0]
        static = self.static(td, embeddings)
        log_likelihood = torch.zeros(rows, device=td.device)
        actions = []
        cut = False
        while not td["done"].all():
            if cut_short is not None and cut_short():
                td, cut = env.finish_in_greedy_order(td), True
                break
            logits = self.logits(td, static)
            running = ~td["done"].squeeze(-1)
            logits = torch.where(running[:, None], logits, torch.zeros_like(logits))
            log_p = F.log_softmax(logits, dim=-1)
            if decode_type == "greedy":
                action = log_p.argmax(-1)
            else:
                action = torch.multinomial(log_p.exp(), 1).squeeze(-1)
            chosen = log_p.gather(-1, action[:, None]).squeeze(-1)
            log_likelihood = log_likelihood + torch.where(running, chosen, 0.0)
            actions.append(action)
            td.set("action", action)
            td = env.step(td)["next"]
        reward = env.get_reward(td, None)
        objective = td["objective"]
        if samples > 1:
            reward, log_likelihood, objective = (
                unbatchify(x, samples) for x in (reward, log_likelihood, objective)
            )
        out: dict[str, Any] = {
            "reward": reward, "log_likelihood": log_likelihood, "objective": objective,
            "max_reward": reward.max(-1).values if samples > 1 else reward,
            "cut_short": cut,
        }  # fmt: skip
        if samples > 1 and select_best:
            best = objective.argmax(-1)
            index = torch.arange(batch, device=reward.device)
            for key in ("reward", "log_likelihood", "objective"):
                out[key] = out[key][index, best]
        if return_actions:
            empty = torch.zeros((rows, 0), dtype=torch.int64, device=td.device)
            out["actions"] = torch.stack(actions, 1) if actions else empty
            out["td"] = td
        return out


@dataclass
class ContactsModel:
    """A loaded contacts policy, its settings and what its card reports."""

    policy: ContactsPolicy
    config: ContactsConfig
    training: dict
    path: str


def save_model(path: str | Path, policy: ContactsPolicy, training: dict) -> None:
    """Write a ``rota.neural/1`` model file of the contacts family (atomically)."""
    write_policy(path, PROBLEM, policy, policy.config.as_dict(), training)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> ContactsModel:
    """Read a contacts model file; anything else is a one-line :class:`FormatError`."""

    def build(payload: dict) -> tuple[ContactsConfig, ContactsPolicy]:
        config = ContactsConfig(**payload["config"])
        return config, ContactsPolicy(config)

    config, policy, payload = read_policy(path, (PROBLEM,), build, device)
    return ContactsModel(policy, config, dict(payload.get("training", {})), str(path))


@dataclass
class Decoded:
    """The best schedule decoded for one instance."""

    objective: float  # the environment's exact objective (instance units)
    solution: Any  # ContactSolution
    rollouts: int  # schedules built for the instance
    source: str  # "greedy decoding" or "sampling"


@torch.inference_mode()
def decode(
    model: ContactsModel,
    instances: Sequence,
    decoding: str = "greedy",
    samples: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
    chunk: int = 16,
    keep_going: Callable[[], bool] | None = None,
    out_of_time: Callable[[], bool] | None = None,
) -> list[Decoded]:
    """The best schedule of each instance (one padded batch): the greedy decoding, and with
    ``sampling`` also up to ``samples`` sampled ones, ``chunk`` per instance at a time,
    while ``keep_going()`` says so (asked after the greedy rollout and after each chunk).
    Once ``out_of_time()`` says so, the greedy decoding takes its remaining requests in
    greedy's order (its ``source`` says it was cut short)."""
    from rota.envs.contacts import ContactsEnv, Prepared, prepare

    if decoding not in DECODINGS:
        raise ValueError(f"decoding is {decoding!r}, expected one of {', '.join(DECODINGS)}")
    torch.manual_seed(seed)
    env = ContactsEnv()
    start = env.load([i if isinstance(i, Prepared) else prepare(i) for i in instances], device)
    batch = len(instances)
    best: list[Decoded] = []
    out = model.policy(env.reset(start), env, phase="test", decode_type="greedy",
                       return_actions=True, cut_short=out_of_time)  # fmt: skip
    source = "greedy decoding"
    if out["cut_short"]:
        source += ", cut short by the time limit and finished in greedy's order"
    for b, solution in enumerate(env.solutions(out["td"])):
        best.append(Decoded(float(out["objective"][b]), solution, 1, source))
    drawn = 0
    while decoding == "sampling" and (keep_going is None or keep_going()) and drawn < samples:
        size = min(chunk, samples - drawn)
        out = model.policy(env.reset(start), env, phase="test", decode_type="sampling",
                           num_samples=size, return_actions=True)  # fmt: skip
        objective = out["objective"].reshape(batch, size)
        rows = out["td"]["rollout"].tolist()
        drawn += size
        for b in range(batch):
            k = int(objective[b].argmax())
            best[b].rollouts += size
            if objective[b, k] > best[b].objective:
                # rl4co's batchify order: sample k of instance b is row k * batch + b
                rollout = env.rollouts[rows[k * batch + b]]
                best[b] = Decoded(float(objective[b, k]), rollout.solution(), best[b].rollouts,
                                  "sampling")  # fmt: skip
    return best


__all__ = [
    "DECODINGS", "DYNAMIC_FEATURES", "PROBLEM", "ContactsConfig", "ContactsModel",
    "ContactsPolicy", "Decoded", "decode", "load_model", "save_model",
]  # fmt: skip
