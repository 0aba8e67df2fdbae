"""Atomic writes: a file (or folder) appears under its final name complete, or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from monai_unet.io.errors import ImageInputError

__all__ = ["atomic_path"]


def _umask() -> int:
    """The process umask, read from ``/proc`` without changing it; elsewhere by setting and restoring it."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # pragma: no cover - systems without /proc
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed to ``target``, on error removed.

    The temporary path lies in a private folder (mode 0700, made by ``mkdtemp``) in the target's folder: same file
    system, so ``os.replace`` is atomic, and no other user can put anything at the name the writer is about to
    create. The folder's name starts with ``.<target name>.`` and ends with ``.tmp``; the path in it ends with
    ``suffix``, so that writers choosing the format by extension (SimpleITK: ``".nii.gz"``) still do. Nothing exists
    at the path when it is yielded: the writer creates a file there, or a folder (DICOM SEG), which replaces
    ``target`` only when ``target`` does not exist or is an empty folder. An existing ``target`` file is replaced
    only when the write succeeded. A written file gets the permissions a plain ``open()`` would give it.

    Raises:
        ImageInputError: the target's folder does not exist.

    Example:
        >>> with atomic_path("models/model.pt") as tmp:
        ...     torch.save(state, tmp)
    """
    target = Path(target)
    if not target.parent.is_dir():
        raise ImageInputError(target, "the output folder does not exist", "Create it first")
    private = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    temporary = private / f"content{suffix}"
    try:
        yield temporary
        if temporary.is_file():
            os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
    finally:
        shutil.rmtree(private, ignore_errors=True)
