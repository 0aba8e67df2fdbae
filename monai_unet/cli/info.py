"""``monai-unet info``: what the reader finds in a file or DICOM folder, and what it would refuse.

For each INPUT: the DICOM series found in a folder (SeriesInstanceUID, description, modality, slices), then the
image as :class:`~monai_unet.io.SimpleITKReader` reads it (size in voxels, channels, spacing in mm, orientation
codes, LPS origin, voxel type, intensity range), or the reader's reason to refuse it. A folder with several series
is described series by series. The exit code is 2 when any input would be refused, so scripts can check inputs
before a long run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from monai_unet.errors import UsageError

__all__ = ["describe", "format_report", "register", "run"]

EXAMPLES = """examples:
  monai-unet info scan.nii.gz
  monai-unet info dicom/CT_series/ dicom/MR_series/
  monai-unet info --json dicom/study/ > report.json"""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "info",
        help="describe what the reader finds in a file or DICOM folder, and any problem",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image file or DICOM series folder")
    parser.add_argument("--json", action="store_true", help="print one JSON report (a list, one entry per INPUT)")
    parser.set_defaults(run=run)


def _image_report(source: str | list[str], series_uid: str | None = None) -> dict[str, Any]:
    """Read one image (or one series of a folder) and describe it; ``problem`` holds the refusal, if any."""
    import nibabel as nib
    import numpy as np

    from monai_unet.io import ImageInputError, SimpleITKReader
    from monai_unet.io.grid import VoxelGrid

    reader = SimpleITKReader(series_uid=series_uid)
    try:
        array, meta = reader.get_data(reader.read(source))
    except ImageInputError as error:
        return {"problem": str(error)}
    grid = VoxelGrid.from_meta(meta)
    ndim = grid.ndim
    channel_axis = 0 if meta["original_channel_dim"] == 0 else -1
    channels = 1 if array.ndim == ndim else int(array.shape[channel_axis])
    finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
    report: dict[str, Any] = {
        "size": list(grid.size),
        "channels": channels,
        "spacing_mm": [round(s, 6) for s in grid.spacing],
        "orientation": "".join(nib.orientations.aff2axcodes(grid.ras_affine())),
        "origin_lps_mm": [round(v, 4) for v in grid.origin],
        "dtype": str(array.dtype),
        "intensity_range": [float(finite.min()), float(finite.max())] if finite.size else None,
        "format": meta.get("source_format", ""),
        "problem": None,
    }
    if meta.get("resampled"):
        report["resampled"] = True
    return report


def describe(path: Path) -> dict[str, Any]:
    """The report of one input: ``{"input", "series" (folders), image fields or "problem"}``."""
    report: dict[str, Any] = {"input": str(path)}
    if not path.exists():
        return {**report, "problem": f"{path}: no such file or folder"}
    if not path.is_dir():
        return {**report, **_image_report(str(path))}
    from monai_unet.io import ImageInputError, list_dicom_series

    try:
        series = list_dicom_series(path)
    except ImageInputError as error:
        return {**report, "series": [], "problem": str(error)}
    report["series"] = [
        {
            "uid": s.uid,
            "description": s.description,
            "number": s.number,
            "modality": s.modality,
            "slices": s.frames,
            "files": len(s.files),
        }
        for s in series
    ]
    whole = _image_report(str(path))
    if len(series) > 1:
        for entry, found in zip(report["series"], series, strict=True):
            entry.update(_image_report(str(path), series_uid=found.uid))
        return {**report, "problem": whole["problem"]}
    return {**report, **whole}


def _geometry_lines(entry: dict[str, Any], indent: str) -> list[str]:
    if entry.get("size") is None:
        return []
    size = " x ".join(str(s) for s in entry["size"])
    spacing = " x ".join(f"{s:g}" for s in entry["spacing_mm"])
    low_high = entry["intensity_range"]
    lines = [
        f"{indent}size:        {size} voxels, {entry['channels']} channel(s), {entry['dtype']} ({entry['format']})",
        f"{indent}spacing:     {spacing} mm",
        f"{indent}orientation: {entry['orientation']} (axis codes, RAS convention)",
        f"{indent}origin:      {', '.join(f'{v:g}' for v in entry['origin_lps_mm'])} mm (LPS)",
        f"{indent}intensity:   " + (f"[{low_high[0]:g}, {low_high[1]:g}]" if low_high else "no finite voxel"),
    ]
    if entry.get("resampled"):
        lines.append(f"{indent}resampled:   yes (irregular series put on a regular grid)")
    return lines


def format_report(report: dict[str, Any]) -> str:
    """Human-readable text of one :func:`describe` report."""
    lines = [report["input"]]
    series = report.get("series")
    several = series is not None and len(series) > 1
    if series is not None:
        lines.append(f"  DICOM series: {len(series)}")
        for entry in series:
            number = "" if entry["number"] is None else f"series {entry['number']}, "
            lines.append(
                f"    {entry['uid'] or '<empty UID>'}  '{entry['description']}' ({number}{entry['modality']}, "
                f"{entry['slices']} slices)"
            )
            if several:
                lines.extend(_geometry_lines(entry, "      "))
                if entry.get("problem"):
                    lines.append(f"      problem: {entry['problem']}")
    lines.extend(_geometry_lines(report, "  "))
    lines.append(f"  problem: {report['problem'] or 'none'}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Print the reports; raises ``UsageError`` (exit 2) when any input would be refused."""
    reports = [describe(path) for path in args.inputs]
    if args.json:
        print(json.dumps(reports, indent=2))
    else:
        print("\n\n".join(format_report(r) for r in reports))
    sys.stdout.flush()
    refused = [r for r in reports if r["problem"]]
    if len(refused) == 1 and len(reports) == 1:
        raise UsageError(refused[0]["problem"])
    if refused:
        names = ", ".join(r["input"] for r in refused)
        raise UsageError(f"{len(refused)} of {len(reports)} inputs would be refused: {names}")
    return reports
