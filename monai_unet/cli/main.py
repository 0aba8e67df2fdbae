"""Entry point of the ``monai-unet`` command: parses the sub-command and maps errors to exit codes.

Exit codes: 0 success, 2 bad input or arguments (one line naming the file and the problem), 1 internal error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from monai_unet import __version__
from monai_unet.cli import demo

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="monai-unet",
        description="U-Net segmentation for medical images on MONAI (Ronneberger et al. 2015).",
        epilog="Run 'monai-unet COMMAND --help' for the options and examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"monai-unet {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"monai-unet {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
