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

_UMASK = os.umask(0)  # read the process umask once (os.umask can only be read by setting it)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed to ``target``, on error removed.

    The temporary name lives in the target's folder (same file system, so ``os.replace`` is atomic), starts with a
    dot and ends with ``.tmp<suffix>``, so that writers choosing the format by extension (SimpleITK: ``".nii.gz"``)
    still do. Nothing exists at the temporary path when it is yielded: the writer creates a file there, or a folder
    (DICOM SEG), which replaces ``target`` only when ``target`` does not exist or is an empty folder. An existing
    ``target`` file is replaced only when the write succeeded. A written file gets the permissions a plain
    ``open()`` would give it (``mkstemp`` makes it private).

    Raises:
        ImageInputError: the target's folder does not exist.

    Example:
        >>> with atomic_path("models/model.pt") as tmp:
        ...     torch.save(state, tmp)
    """
    target = Path(target)
    if not target.parent.is_dir():
        raise ImageInputError(target, "the output folder does not exist", "Create it first")
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{suffix}", dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    temporary.unlink()  # the writer creates it (some refuse to overwrite, some create a directory)
    try:
        yield temporary
        if temporary.is_file():
            os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, target)
    except BaseException:
        if temporary.is_dir():
            shutil.rmtree(temporary)
        else:
            temporary.unlink(missing_ok=True)
        raise
