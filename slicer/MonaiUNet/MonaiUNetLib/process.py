"""Stopping a run: ``PythonSlicer`` is a launcher that starts the real Python as its child, so killing the process
Slicer started leaves the segmentation running. :func:`stop_process_tree` stops the launcher and everything it
started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

__all__ = ["descendants", "stop_process_tree"]


def descendants(pid: int) -> list[int]:
    """Every process started by ``pid``, directly or not, parents before their children (POSIX ``ps``)."""
    listing = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True, check=True)
    children: dict[int, list[int]] = {}
    for line in listing.stdout.splitlines():
        child, parent = (int(field) for field in line.split())
        children.setdefault(parent, []).append(child)
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped by its parent, is not)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def stop_process_tree(pid: int, grace_s: float = 3.0) -> None:
    """Stop ``pid`` and every process it started: SIGTERM, children first (``monai-unet segment`` removes its
    staging folder on SIGTERM), then SIGKILL for what still runs after ``grace_s`` seconds. On Windows,
    ``taskkill /T /F``."""
    if os.name == "nt":  # pragma: no cover - Windows
        subprocess.run(["taskkill", "/PID", str(pid), "/T", "/F"], capture_output=True, check=False)
        return
    tree = [pid, *descendants(pid)]
    for member in reversed(tree):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while any(_alive(member) for member in tree) and time.monotonic() < deadline:
        time.sleep(0.05)
    for member in tree:
        if _alive(member):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(member, signal.SIGKILL)
