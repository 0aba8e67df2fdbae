"""Entry point of the ``monai-unet`` command: parses the sub-command and maps errors to exit codes.

Exit codes: 0 success, 2 bad input or arguments (an :class:`~monai_unet.errors.InputError` or a missing file; one
line ``monai-unet COMMAND: error: PATH: PROBLEM`` on stderr, no traceback), 1 internal error (any other exception,
a ``ValueError`` from a bug included; one line and a hint to rerun with ``--debug``, which prints the traceback),
130 interrupted (Ctrl-C), 143 terminated (SIGTERM); both remove the command's staging folders and temporaries.

Each command lives in its own module with ``register(commands)`` and a ``run(args)`` set as ``args.run``. Command
modules import torch and MONAI inside ``run``, so ``--help`` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Sequence

from monai_unet import __version__
from monai_unet.errors import InputError

__all__ = [
    "COMMANDS",
    "EXIT_BAD_INPUT",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "Terminated",
    "build_parser",
    "main",
]

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
#: OSErrors the user fixes in their environment (permissions, a read-only or full file system): exit 2, not 1.
_ENVIRONMENT_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class Terminated(BaseException):
    """SIGTERM (a job scheduler's stop, ``kill``) raised as an exception, so that ``finally`` blocks remove
    staging folders and temporaries as they do for Ctrl-C."""


def _terminate(signum, frame) -> None:
    raise Terminated


#: Command modules, in the order ``--help`` lists them (``bundle_commands`` registers train, evaluate and infer).
COMMANDS = (
    "monai_unet.cli.plan",
    "monai_unet.cli.segment",
    "monai_unet.cli.info",
    "monai_unet.cli.bundle_commands",
    "monai_unet.cli.export",
    "monai_unet.cli.bundles",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="monai-unet",
        description="U-Net segmentation for medical images on MONAI (Ronneberger et al. 2015).",
        epilog="Run 'monai-unet COMMAND --help' for the options and examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"monai-unet {__version__}")
    parser.add_argument("--debug", action="store_true", help="print the traceback of internal errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(name).register(commands)
    for sub in commands.choices.values():  # the modules' docstrings serve as help: without their Sphinx markup
        sub.description = plain_text(sub.description)
        for action in sub._actions:
            action.help = plain_text(action.help)
    return parser


def plain_text(text: str | None) -> str | None:
    """Docstring text as a terminal shows it: ``code`` and :role:`~module.Name` become code and Name."""
    if text is None:
        return None
    text = re.sub(
        r":[a-z]+:`~?([^`<]*?)\s*(?:<[^`]*>)?`",
        lambda m: m.group(1).split(".")[-1] if "~" in m.group(0) else m.group(1),
        text,
    )
    return text.replace("``", "")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        args.run(args)
    except (FileNotFoundError, InputError) as error:
        print(f"monai-unet {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"monai-unet {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print(f"monai-unet {args.command}: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except Exception as error:
        if isinstance(error, OSError) and error.errno in _ENVIRONMENT_ERRORS:
            where = f"{error.filename}: " if error.filename else ""
            print(f"monai-unet {args.command}: error: {where}{os.strerror(error.errno).lower()}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if args.debug:
            traceback.print_exc()
        print(
            f"monai-unet {args.command}: internal error: {type(error).__name__}: {_one_line(error)}"
            + ("" if args.debug else " (rerun with --debug for the traceback)"),
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
