"""Reading text files and writing files atomically, for every reader and writer.

Readers load a whole file as text through :func:`load_text`, which turns every
way a path can fail to be a text file into one :class:`~rota.errors.FormatError`
line. Writers go through :func:`atomic_open`: the data lands in a temporary
file beside the target and is renamed onto it only once complete, so an
interrupted write never leaves half a file and never destroys the old one.
"""

from __future__ import annotations

import math
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rota.errors import FormatError, ResourceError

#: Largest text file a reader loads (1 GiB): a 10,000-location explicit matrix
#: takes about 600 MB; anything larger is not an instance rota can solve.
MAX_TEXT_BYTES = 2**30


def regular_file(path: str | Path) -> Path:
    """``path``, checked to be a regular file: a FIFO or a device would block or never end.

    Raises
    ------
    FormatError
        Missing, a directory, or not a regular file.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except OSError as exc:
        raise FormatError(f"{path}: cannot read file ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise FormatError(f"{path}: is a directory, expected a file")
    if not stat.S_ISREG(mode):
        raise FormatError(f"{path}: is not a regular file (a device, FIFO or socket)")
    return path


def load_text(path: str | Path) -> str:
    """The file's text, or a one-line :class:`FormatError` if it is not readable text."""
    path = regular_file(path)
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise FormatError(
            f"{path}: {size / 2**30:.1f} GiB, larger than the {MAX_TEXT_BYTES // 2**30} GiB "
            "rota reads as one instance or solution"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"{path}: cannot read file ({exc.strerror})") from None
    nul = data.find(b"\x00")
    if nul >= 0:
        raise FormatError(f"{path}: binary data, not text (NUL byte at offset {nul})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    if not text.strip():
        raise FormatError(f"{path}: file is empty")
    return text


class _Atomic:
    """Open a temporary file beside ``path``; rename it onto ``path`` only on success."""

    def __init__(self, path: Path, mode: str) -> None:
        self.path, self.mode = path, mode

    def __enter__(self) -> Any:
        directory = self.path.parent
        if not directory.is_dir():
            raise FormatError(f"{self.path}: directory {directory} does not exist")
        fd, self.temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        encoding = None if "b" in self.mode else "utf-8"
        self.handle = os.fdopen(fd, self.mode, encoding=encoding)
        return self.handle

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        self.handle.close()
        if kind is None:
            os.chmod(self.temp, 0o644)  # mkstemp's 0600 would surprise whoever reads the file
            os.replace(self.temp, self.path)
        else:
            os.unlink(self.temp)


def atomic_open(path: str | Path, mode: str = "w") -> Any:
    """Context manager writing ``path`` through a temporary file renamed at the end.

    An exception (including ``KeyboardInterrupt``) inside the block removes the
    temporary file and leaves any previous ``path`` untouched.
    """
    return _Atomic(Path(path), mode)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path) as handle:
        handle.write(text)


def save_figure(figure: Any, path: str | Path, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG, atomically like every other write."""
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=dpi)
    return path


def available_memory() -> float | None:
    """Bytes of memory available to new allocations (Linux ``MemAvailable``), if known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _size(nbytes: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes:.0f} bytes"


def require_memory(nbytes: float, what: str) -> None:
    """Refuse, before allocating, work that needs more memory than is available.

    Raises
    ------
    ResourceError
        Naming ``what``, the bytes it needs and the bytes available.
    """
    available = available_memory()
    if available is not None and nbytes > available:
        raise ResourceError(
            f"{what} needs about {_size(nbytes)} of memory; {_size(available)} is available"
        )


def matrix_bytes(n: int, matrices: int = 1) -> float:
    """Bytes of ``matrices`` dense ``(n, n)`` float64 matrices (as a float: n may be huge)."""
    return 8.0 * float(n) * float(n) * matrices


def json_safe(value: Any) -> Any:
    """A copy that ``json.dumps`` accepts: arrays to lists, numpy scalars to Python,
    infinities and NaN to ``None`` (JSON has no infinity)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "iub" or np.isfinite(value).all():
            return value.tolist()
        return json_safe(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


__all__ = [
    "MAX_TEXT_BYTES", "atomic_open", "available_memory", "json_safe", "load_text",
    "matrix_bytes", "regular_file", "require_memory", "save_figure", "write_text",
]  # fmt: skip
