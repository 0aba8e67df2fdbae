"""The error raised for bad input: it names the file or folder, the problem, and what to do."""

from __future__ import annotations

from os import PathLike

__all__ = ["ImageInputError"]


class ImageInputError(ValueError):
    """Bad input data (unreadable file, awkward DICOM series, mismatched geometry, ...).

    A ``ValueError``, so the command line maps it to exit code 2. ``str(error)`` is one line:
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
