"""The error raised for bad input: it names the file or folder, the problem, and what to do."""

from __future__ import annotations

from os import PathLike

from monai_unet.errors import InputError

__all__ = ["ImageInputError", "OutputWriteError", "last_line"]


class ImageInputError(InputError):
    """Bad input data (unreadable file, awkward DICOM series, mismatched geometry, ...).

    An :class:`~monai_unet.errors.InputError`, so the command line maps it to exit code 2. ``str(error)`` is one line:
    ``"<path>: <problem>. <what to do>"``.

    Args:
        path: the file or folder at fault.
        problem: what is wrong, in terms a clinician's engineer can act on.
        hint: what to do about it (optional).
    """

    def __init__(self, path: str | PathLike, problem: str, hint: str | None = None) -> None:
        self.path = str(path)
        self.problem = problem
        self.hint = hint
        message = f"{self.path}: {problem}"
        if hint:
            message += f". {hint}"
        super().__init__(message)


class OutputWriteError(ImageInputError):
    """An output that could not be written completely (no space left on device, quota, file-size limit, a short
    write). Whatever was at the path before is unchanged and the temporary is removed; like bad input, the command
    line reports it with exit code 2, naming the path."""


def last_line(message: str) -> str:
    """The last non-empty line of a library's multi-line error (ITK puts the reason there)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[-1] if lines else message
