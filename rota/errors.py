"""The exceptions rota raises on purpose, in one place.

Each is a ``ValueError`` or ``KeyError`` whose message is one line naming the
file, field, option or solver at fault, so that the CLI can print it as is.
"""

from __future__ import annotations


class FormatError(ValueError):
    """A file that does not follow its format; the message is one line."""


class ResourceError(ValueError):
    """A request that would need more memory (or runs) than this machine can give."""


class UnsupportedError(ValueError):
    """A solver was asked for something it cannot do (a warm start, a stopping criterion)."""


class UnsupportedInstanceError(UnsupportedError):
    """A solver is asked to solve an instance it cannot model, or is not installed."""


class UnknownSolverError(KeyError):
    """A solver name that no problem family registers."""

    def __str__(self) -> str:  # KeyError quotes its message; a CLI line should not
        return str(self.args[0])


__all__ = [
    "FormatError", "ResourceError", "UnknownSolverError", "UnsupportedError",
    "UnsupportedInstanceError",
]  # fmt: skip
