"""Atomic writes: a file (or folder) appears under its final name complete, or not at all."""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from monai_unet.io.errors import ImageInputError, OutputWriteError

__all__ = ["NO_ROOM", "atomic_path", "check_writable_folder", "out_of_room", "sweep_temporaries"]


def _umask() -> int:
    """The process umask, read from ``/proc`` without changing it; elsewhere by setting and restoring it."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # pragma: no cover - systems without /proc
    os.umask(mask)
    return mask


#: errno values of a write that ran out of room: disk full, quota, the process's file-size limit.
NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def out_of_room(target: str | os.PathLike, problem: str = "no space left on device") -> OutputWriteError:
    """The error for a write to ``target`` that ran out of room (``problem``: the system's words for it)."""
    return OutputWriteError(target, problem, "Nothing was replaced; free some space (or write elsewhere)")


def _no_room_left(folder: Path) -> bool:
    """Whether the file system of ``folder`` is (all but) full: under 1 MiB free for this user."""
    with contextlib.suppress(OSError):
        stats = os.statvfs(folder)
        return stats.f_bavail * stats.f_frsize < 2**20
    return False


def _fsync(path: Path) -> None:
    """Flush a written file to the disk, so that a full disk fails here (delayed allocation) and not after the
    rename; every file of a written folder too."""
    for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
        with open(file, "rb") as f:
            os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(
    target: str | os.PathLike, suffix: str = "", verify: Callable[[Path], object] | None = None
) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed to ``target``, on error removed.

    The temporary path lies in a private folder (mode 0700, made by ``mkdtemp``) in the target's folder: same file
    system, so ``os.replace`` is atomic, and no other user can put anything at the name the writer is about to
    create. The folder's name starts with ``.<target name>.`` and ends with ``.tmp``; the path in it ends with
    ``suffix``, so that writers choosing the format by extension (SimpleITK: ``".nii.gz"``) still do. Nothing exists
    at the path when it is yielded: the writer creates a file there, or a folder (DICOM SEG), which replaces
    ``target`` only when ``target`` does not exist or is an empty folder. An existing ``target`` file is replaced
    only when the write succeeded. A written file gets the permissions a plain ``open()`` would give it.

    Before the rename the content is flushed to the disk (``fsync``) and, with ``verify``, read back:
    ``verify(path)`` raises ``ImageInputError`` when the file is incomplete (writers such as SimpleITK ignore a
    short write). A disk that is full (or a quota or file-size limit) raises :class:`OutputWriteError`: an
    ``OSError`` with ENOSPC, EDQUOT or EFBIG, or any error of a writer that hides the errno (``torch.save``, ITK)
    while the file system has no room left.

    Raises:
        ImageInputError: the target's folder does not exist.
        OutputWriteError: no room to write, or the written file did not read back complete; ``target`` is
            unchanged and the temporary removed.

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
        if temporary.exists():
            _fsync(temporary)
        if verify is not None:
            try:
                verify(temporary)
            except ImageInputError as error:
                raise OutputWriteError(
                    target, f"the written file did not read back complete ({error.problem}); the disk may be full"
                ) from error
        if temporary.is_file():
            os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
    except Exception as error:
        # Writers that hide the errno (torch.save, ITK) raise RuntimeError, ours word it themselves, a short write
        # shows on reading back: on a full file system each of them is reported as what it is.
        if isinstance(error, OSError) and error.errno in NO_ROOM:
            problem = os.strerror(error.errno).lower()
        elif _no_room_left(target.parent):
            problem = "no space left on device"
        else:
            raise
        raise out_of_room(target, problem) from error
    finally:
        shutil.rmtree(private, ignore_errors=True)


def check_writable_folder(folder: str | os.PathLike) -> None:
    """Refuse, before any work, an output folder that cannot be made or written (read-only file system, no
    permission, a file in the way): :class:`OutputWriteError` naming it. Nothing is created: a probe file is made
    in the nearest folder that exists and removed at once."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputWriteError(folder, f"{existing} is a file, not a folder", "Choose another output folder")
    try:
        handle, probe = tempfile.mkstemp(prefix=".monai-unet-probe.", dir=existing)
    except OSError as error:
        where = "" if existing == folder else f" (in {existing})"
        problem = f"cannot write here{where}: {os.strerror(error.errno).lower()}"
        raise OutputWriteError(folder, problem, "Choose a folder you may write to") from None
    os.close(handle)
    os.unlink(probe)


def sweep_temporaries(folder: str | os.PathLike, target_name: str | None = None, suffix: str = ".tmp") -> list[Path]:
    """Remove the private folders that killed writers left in ``folder`` (``atomic_path``'s ``.<name>.*.tmp``, or
    ``suffix`` for other writers' staging folders); only folders, only names of that pattern. Returns them.

    Call it where no other writer is working on the same target at the same time (a run's own folder on resume, an
    output about to be replaced).
    """
    swept = []
    name = "*" if target_name is None else glob.escape(target_name)
    for path in Path(folder).glob(f".{name}.*{suffix}"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            swept.append(path)
    return swept
