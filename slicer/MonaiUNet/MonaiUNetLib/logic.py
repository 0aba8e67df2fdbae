"""What the 3D Slicer module does, in plain Python: no ``slicer``, ``qt`` or ``vtk`` here, so it is tested outside.

- :func:`read_bundle_summary`: a bundle's name, input channels and segments, as monai-unet's own bundle reader
  (:func:`monai_unet.cli.bundle.open_bundle`) states them (the UI shows one input selector per channel and the
  segments it will get).
- :func:`plan_run`: the temporary files of one run (one ``.nrrd`` per input channel, written by Slicer, and the
  ``.seg.nrrd`` the command writes) in a fresh folder, and :func:`build_segment_command`: the ``monai-unet
  segment`` command line that Slicer runs in a background process with Slicer's own Python (``PythonSlicer``).
- :class:`ProgressParser`: turns the process's merged stdout/stderr stream (tqdm redraws a line with ``\\r``)
  into log lines and a completion fraction.
- :func:`read_seg_nrrd_segments` and :func:`merge_segments`: label value → segment name and colour, from the written
  ``.seg.nrrd`` header and the bundle, applied to the loaded segmentation node.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BundleSummary",
    "ProgressParser",
    "RunPlan",
    "SegmentInfo",
    "build_segment_command",
    "merge_segments",
    "plan_run",
    "read_bundle_summary",
    "read_seg_nrrd_segments",
]

#: Colour given to a segment whose colour neither the file nor the bundle states (Slicer's default green-ish grey).
FALLBACK_COLOR = (0.5, 0.68, 0.5)

_PERCENT = re.compile(r"(\d{1,3})%\|")  # tqdm's "42%|████      | 13/31 [...]"
_FIELD = re.compile(r"^Segment(\d+)_(\w+):=(.*)$")


@dataclass(frozen=True)
class SegmentInfo:
    """One segment of the output: its label value in the label map, display name and RGB colour in [0, 1]."""

    value: int
    name: str
    color: tuple[float, float, float]


@dataclass(frozen=True)
class BundleSummary:
    """What the module needs to know about a bundle before running it.

    Args:
        root: the bundle folder.
        name: ``metadata.json``'s ``name`` (the folder name when absent).
        channels: input channels per case (one Slicer volume each).
        channel_names: their names (e.g. ``["FLAIR", "T1c"]``), ``channel0``, ... when unstated.
        segments: the output segments, by label value.
    """

    root: Path
    name: str
    channels: int
    channel_names: tuple[str, ...]
    segments: tuple[SegmentInfo, ...]


def read_bundle_summary(bundle_dir: str | Path) -> BundleSummary:
    """A bundle as ``monai-unet segment`` will see it: opened by monai-unet's own
    :func:`monai_unet.cli.bundle.open_bundle` (one reading of ``configs/metadata.json`` for the CLI and this module),
    so monai-unet must be installed in Slicer's Python first.

    Raises:
        ValueError: monai-unet is not installed yet, the folder is not a bundle (no readable
            ``configs/metadata.json``), or it has no ``configs/inference.json``; the message names the file.
    """
    try:
        from monai_unet.cli.bundle import open_bundle
        from monai_unet.errors import UsageError
    except ImportError:
        raise ValueError(
            "monai-unet is not installed in Slicer's Python yet: install it (Package, then Install) to open a bundle"
        ) from None
    try:
        bundle = open_bundle(bundle_dir)
        bundle.config("inference")
    except UsageError as error:
        raise ValueError(str(error)) from None
    channels = bundle.input_channels or 1
    stated = bundle.channel_names
    colors = bundle.label_colors
    return BundleSummary(
        root=bundle.root,
        name=str(bundle.metadata.get("name") or bundle.root.name),
        channels=channels,
        channel_names=tuple(stated[i] if i < len(stated) else f"channel{i}" for i in range(channels)),
        segments=tuple(
            SegmentInfo(value, name, colors.get(value, FALLBACK_COLOR))
            for value, name in sorted(bundle.label_names.items())
        ),
    )


@dataclass(frozen=True)
class RunPlan:
    """The files of one run, all inside ``work_dir`` (delete the folder afterwards).

    Args:
        work_dir: a fresh temporary folder.
        inputs: one ``.nrrd`` per input channel, for Slicer to write the selected volumes to.
        output: the ``.seg.nrrd`` the command writes.
    """

    work_dir: Path
    inputs: tuple[Path, ...]
    output: Path


def plan_run(channels: int, temp_root: str | Path | None = None) -> RunPlan:
    """Create a fresh folder (in ``temp_root``, default the system temp folder) and name the run's files."""
    if channels < 1:
        raise ValueError(f"a bundle takes at least one input channel, got {channels}")
    work_dir = Path(tempfile.mkdtemp(prefix="MonaiUNet-", dir=temp_root))
    inputs = tuple(work_dir / f"input_{i}.nrrd" for i in range(channels))
    return RunPlan(work_dir, inputs, work_dir / "segmentation.seg.nrrd")


def build_segment_command(
    python: str | Path,
    plan: RunPlan,
    bundle_dir: str | Path,
    *,
    device: str | None = None,
    tta: bool = False,
    precise: bool = False,
) -> list[str]:
    """The argument list of ``monai-unet segment`` for a plan, run as ``<python> -m monai_unet.cli.main``.

    Args:
        python: Slicer's Python interpreter (``shutil.which("PythonSlicer")``), where monai-unet is pip-installed.
        plan: the run's files.
        bundle_dir: the bundle folder.
        device: ``"cpu"``, ``"cuda"`` or ``None`` (the command picks cuda when available).
        tta: force mirror test-time augmentation on; off leaves the bundle's own choice (a planned bundle's
            training decides).
        precise: strict float32 instead of the fast path.
    """
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or None, got {device!r}")
    command = [str(python), "-m", "monai_unet.cli.main", "segment", *(str(p) for p in plan.inputs)]
    command += ["-o", str(plan.output), "--bundle", str(bundle_dir), "--progress"]
    if device is not None:
        command += ["--device", device]
    if tta:
        command.append("--tta")
    command.append("--precise" if precise else "--fast")
    return command


class ProgressParser:
    """Split a process's output stream into complete lines and the latest progress fraction.

    Feed it text as it arrives (any chunking); ``\\n`` ends a line, ``\\r`` (a tqdm redraw) replaces the line being
    drawn. A line with tqdm's ``NN%|`` updates :attr:`fraction` and is not kept as a log line; a line starting
    with ``monai-unet`` marks a stage and is kept.
    """

    def __init__(self) -> None:
        self._pending = ""
        self.fraction: float | None = None

    def feed(self, text: str) -> list[str]:
        """Add output text; returns the log lines completed by it (without progress-bar redraws)."""
        self._pending += text
        lines: list[str] = []
        while True:
            cut = min((i for i in (self._pending.find("\n"), self._pending.find("\r")) if i >= 0), default=-1)
            if cut < 0:
                break
            line, self._pending = self._pending[:cut], self._pending[cut + 1 :]
            if not self._take_progress(line) and line.strip():
                lines.append(line.rstrip())
        self._take_progress(self._pending)
        return lines

    def finish(self) -> list[str]:
        """The last, unterminated line (if it is not a progress redraw)."""
        rest, self._pending = self._pending, ""
        return [rest.rstrip()] if rest.strip() and not self._take_progress(rest) else []

    def _take_progress(self, line: str) -> bool:
        found = _PERCENT.findall(line)
        if not found:
            return False
        self.fraction = min(int(found[-1]), 100) / 100.0
        return True


def read_seg_nrrd_segments(path: str | Path) -> list[SegmentInfo]:
    """Segments listed in a ``.seg.nrrd`` header (``SegmentN_LabelValue``, ``_Name``, ``_Color``), by label value.

    Raises:
        ValueError: not a NRRD file, or a segment without a label value.
    """
    fields: dict[int, dict[str, str]] = {}
    with open(path, "rb") as f:
        if not f.readline().startswith(b"NRRD"):
            raise ValueError(f"{path}: not a NRRD file")
        for raw in f:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line:
                break  # the blank line ends the header
            match = _FIELD.match(line)
            if match:
                fields.setdefault(int(match.group(1)), {})[match.group(2)] = match.group(3)
    segments = []
    for index in sorted(fields):
        entry = fields[index]
        if "LabelValue" not in entry:
            raise ValueError(f"{path}: Segment{index} has no LabelValue")
        rgb = tuple(float(c) for c in entry.get("Color", "").split()) or FALLBACK_COLOR
        name = entry.get("Name", f"Segment_{entry['LabelValue']}")
        segments.append(SegmentInfo(int(entry["LabelValue"]), name, rgb))  # type: ignore[arg-type]
    return sorted(segments, key=lambda s: s.value)


def merge_segments(written: Sequence[SegmentInfo], stated: Sequence[SegmentInfo]) -> list[SegmentInfo]:
    """Names and colours to apply: the written file's segments, named and coloured by the bundle where it states
    them (a label the bundle does not name keeps the file's name)."""
    by_value = {s.value: s for s in stated}
    return [by_value.get(s.value, s) for s in written]
