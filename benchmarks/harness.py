"""Timing and memory harness shared by every benchmark module.

A case runs ours and the baseline in the same process, with the same thread count, after warm-up, and reports
the median of several runs, peak resident memory (RSS) during the runs, and the ratio baseline / ours (> 1 means
ours is faster). Peak RSS is the kernel's high-water mark (VmHWM), reset before each measurement through
``/proc/self/clear_refs`` where Linux allows it.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "Comparison",
    "Measurement",
    "compare",
    "machine_description",
    "markdown_table",
    "measure",
    "set_threads",
]


def set_threads(n: int) -> None:
    """Fix the intra-op thread count for every case (the machines here have 2 cores)."""
    torch.set_num_threads(n)


def _read_status_kb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return float(line.split()[1])
    return float("nan")


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@dataclass
class Measurement:
    """Wall-clock times (seconds) of the timed runs and memory (MiB) of one callable."""

    name: str
    times_s: list[float]
    peak_rss_mib: float
    rss_before_mib: float

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    @property
    def peak_delta_mib(self) -> float:
        """Peak RSS above the RSS the process had before the measurement."""
        return self.peak_rss_mib - self.rss_before_mib


def measure(name: str, fn: Callable[[], Any], *, warmup: int = 1, repeats: int = 5) -> Measurement:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed ones; peak RSS over the timed calls."""
    for _ in range(warmup):
        fn()
    gc.collect()
    _reset_peak_rss()
    before = _read_status_kb("VmRSS") / 1024
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    peak = _read_status_kb("VmHWM") / 1024
    return Measurement(name, times, peak, before)


def compare(
    case: str,
    ours: tuple[str, Callable[[], Any]],
    baseline: tuple[str, Callable[[], Any]],
    *,
    warmup: int = 1,
    repeats: int = 5,
    extra: dict[str, Any] | None = None,
) -> Comparison:
    """Time ours and the baseline with their runs interleaved, so that load from other processes hits both alike.

    Args:
        case: the case's name in the table.
        ours, baseline: ``(name, callable)`` pairs.
        warmup: untimed calls of each before timing.
        repeats: timed calls of each.
        extra: case-specific figures for the table.
    """
    for _ in range(warmup):
        ours[1]()
        baseline[1]()
    times: dict[str, list[float]] = {"ours": [], "baseline": []}
    peaks: dict[str, float] = {"ours": 0.0, "baseline": 0.0}
    befores: dict[str, float] = {"ours": float("inf"), "baseline": float("inf")}
    for _ in range(repeats):
        for side, (_, fn) in (("ours", ours), ("baseline", baseline)):
            gc.collect()
            _reset_peak_rss()
            befores[side] = min(befores[side], _read_status_kb("VmRSS") / 1024)
            start = time.perf_counter()
            fn()
            times[side].append(time.perf_counter() - start)
            peaks[side] = max(peaks[side], _read_status_kb("VmHWM") / 1024)
    return Comparison(
        case,
        Measurement(ours[0], times["ours"], peaks["ours"], befores["ours"]),
        Measurement(baseline[0], times["baseline"], peaks["baseline"], befores["baseline"]),
        dict(extra or {}),
    )


@dataclass
class Comparison:
    """One case: ours against a baseline, plus any case-specific figures (FLOPs, agreement, ...)."""

    case: str
    ours: Measurement
    baseline: Measurement
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def speedup(self) -> float:
        """Baseline median time / our median time (> 1: ours is faster)."""
        return self.baseline.median_s / self.ours.median_s


def machine_description() -> str:
    """One line naming the date, CPU, core and thread counts and library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import monai

    return (
        f"{dt.date.today().isoformat()}, {cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), MONAI {monai.__version__}, Python {platform.python_version()}"
    )


def markdown_table(comparisons: list[Comparison]) -> str:
    """A Markdown table: case, ours and baseline median (ms), speed-up, peak RSS of each, extra figures."""
    extra_keys: list[str] = []
    for c in comparisons:
        extra_keys += [k for k in c.extra if k not in extra_keys]
    header = [
        "case",
        "ours (ms)",
        "baseline",
        "baseline (ms)",
        "speed-up",
        "ours peak ΔRSS (MiB)",
        "baseline peak ΔRSS (MiB)",
    ]
    rows = ["| " + " | ".join(header + extra_keys) + " |", "|" + "---|" * (len(header) + len(extra_keys))]
    for c in comparisons:
        cells = [
            c.case,
            f"{1000 * c.ours.median_s:.1f}",
            c.baseline.name,
            f"{1000 * c.baseline.median_s:.1f}",
            f"{c.speedup:.2f}×",
            f"{c.ours.peak_delta_mib:.0f}",
            f"{c.baseline.peak_delta_mib:.0f}",
        ]
        cells += [str(c.extra.get(k, "")) for k in extra_keys]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
