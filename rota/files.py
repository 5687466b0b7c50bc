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
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rota.errors import FormatError


def load_text(path: str | Path) -> str:
    """The file's text, or a one-line :class:`FormatError` if it is not readable text."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FormatError(f"{path}: is a directory, expected a file") from None
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


__all__ = ["atomic_open", "json_safe", "load_text", "write_text"]
