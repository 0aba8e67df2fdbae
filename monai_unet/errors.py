"""The one base class of errors the user fixes (bad input, arguments, environment), kept free of heavy imports so
the command line can tell them from our own bugs without importing torch.

``monai-unet`` answers an :class:`InputError` with exit code 2 and its one-line message; any other exception,
``ValueError`` included, is an internal error (exit 1), because a ``ValueError`` raised by a bug in our code is not
the user's to fix.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["InputError", "UsageError", "listed"]


class InputError(ValueError):
    """Input the user must fix: the message names the file, folder or argument and the problem (exit code 2).

    Subclasses: :class:`UsageError` (arguments), ``monai_unet.io.ImageInputError`` (images and outputs),
    ``monai_unet.plan.DatasetError`` (datasets), ``monai_unet.handlers.CheckpointError`` (checkpoints).
    """


class UsageError(InputError):
    """Command-line arguments that cannot work together or name something unusable."""


def listed(names: Sequence[str], shown: int = 5) -> str:
    """``names`` joined for a one-line message: the first ``shown`` and how many more (``"a, b and 3 more"``)."""
    head = ", ".join(names[:shown])
    return head + (f" and {len(names) - shown} more" if len(names) > shown else "")
