"""Counter-based random numbers: the same draws for an instance alone or in a batch.

A stateful generator shared by a batch would hand instance ``b`` different
numbers depending on the instances before it. Here every number is a hash of
``(seed, call, index)``, where ``call`` counts the draws of one solve (the
same sequence whatever the batch) and ``index`` is what the number is for
(offspring ``o``, client ``c``), never a position that padding could shift.
"""

from __future__ import annotations

import torch


def _shr(x: torch.Tensor, bits: int) -> torch.Tensor:
    # torch shifts int64 arithmetically; a hash needs the logical shift
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def _mix(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finaliser (int64 products wrap, as the uint64 ones do)."""
    x = (x ^ _shr(x, 30)) * -4658895280553007687  # 0xBF58476D1CE4E5B9
    x = (x ^ _shr(x, 27)) * -7723592293110705685  # 0x94D049BB133111EB
    return x ^ _shr(x, 31)


class CounterRng:
    """Uniform numbers in ``[0, 1)`` keyed by seed, draw number and index."""

    def __init__(self, seed: int, device: torch.device) -> None:
        self.key = _mix(torch.tensor(seed % 2**63, dtype=torch.int64, device=device))
        self.device = device
        self.calls = 0

    def uniform(self, index: torch.Tensor) -> torch.Tensor:
        """One float64 per entry of the integer tensor ``index``."""
        self.calls += 1
        call = _mix(self.key + self.calls)
        bits = _mix(call ^ _mix(index.to(torch.int64) + 0x632BE59BD9B4E019))
        return _shr(bits, 11).to(torch.float64) * 2.0**-53

    def replay_from(self, calls: int) -> None:
        """Number the next draws from ``calls + 1`` again, so that a draw made in parts
        (over parts of its index) gets the numbers the whole draw would."""
        self.calls = calls

    def arange_uniform(self, *shape: int) -> torch.Tensor:
        """``uniform`` of the row-major indices of ``shape`` (shapes free of padding only)."""
        size = 1
        for s in shape:
            size *= s
        index = torch.arange(size, dtype=torch.int64, device=self.device).view(*shape)
        return self.uniform(index)


__all__ = ["CounterRng"]
