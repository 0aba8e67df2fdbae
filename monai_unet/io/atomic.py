"""Atomic writes: a file appears under its final name complete, or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path"]

_UMASK = os.umask(0)  # read the process umask once (os.umask can only be read by setting it)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed to ``target``, on error removed.

    The temporary file lives in the target's folder (same file system, so the rename is atomic) and is named
    ``.<name>.<random>.part<suffix>`` so that a format chosen by extension (``suffix``, e.g. ``".nii.gz"``) still
    applies. An existing ``target`` is replaced only when the write succeeded.

    Example:
        >>> with atomic_path("models/model.pt") as tmp:
        ...     torch.save(state, tmp)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=f".part{suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.is_file():  # mkstemp creates 0600; give the file the permissions a plain open() would
            os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
