"""``monai-unet`` run by its ``main`` inside the test process, for refusals that happen before any work.

A subprocess pays the torch/MONAI import (about 5 s of CPU) for a one-line answer; these cases need the answer only.
Each test module keeps at least one real subprocess run of the same refusal kind, so the process's own exit code is
still checked end to end (``sys.exit(main())`` is the whole entry point).
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from monai_unet.cli.main import main


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str | Path) -> subprocess.CompletedProcess:
    """``monai-unet ARGS`` through ``main``: the exit code it returns and what it printed (``capsys``)."""
    capsys.readouterr()  # what the test printed before is not the command's
    handler = signal.getsignal(signal.SIGTERM)  # main installs its own SIGTERM handler; the worker keeps pytest's
    try:
        code = main([str(a) for a in args])
    finally:
        signal.signal(signal.SIGTERM, handler)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(["monai-unet", *map(str, args)], code, captured.out, captured.err)
