"""The input's grid as ``monai-unet segment`` reads it, and the check that an output lies on it.

The CLI reads every input's headers before inference (:meth:`~monai_unet.io.SimpleITKReader.read_header`: no voxel
is decoded) and keeps the grid in LPS terms; it is the reader's own, the one the bundle inverts its preprocessing to.
So a scan the headers already refuse (an awkward DICOM series, a 4D file for a 3D bundle, channels on different
grids) is refused, or set aside in a batch, before the bundle's run starts. Damaged voxel data (a truncated
``.nii.gz``, NaN voxels) is found when the bundle reads the scan: the command then stops with the reader's message,
and a batch sets that case aside and goes on with the others. A bundle whose own reader fails on such data (MONAI's
``LoadImage``) fails with its own error; then :func:`damaged_input` decodes the input with ours, so that the damaged
file is still named (exit 2) and set aside. After inference, each written segmentation must have
the same size, origin, spacing and direction, else the bundle's inverse preprocessing is wrong (an internal error,
never a silently shifted result).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from monai_unet.cli.bundle import BundleRunError

if TYPE_CHECKING:  # torch and SimpleITK are imported when a scan is read, not at start-up
    from monai_unet.io.grid import VoxelGrid

__all__ = ["SourceScan", "add_resample_argument", "check_output_grid", "damaged_input", "read_source_scan"]

_GEOMETRY_TOLERANCE_MM = 1e-3  # NIfTI stores the grid in float32: about 3e-5 mm at 500 mm from the origin


@dataclass(frozen=True)
class SourceScan:
    """What ``segment`` keeps of its input after reading it: the grid, and whether it is a DICOM series.

    Args:
        grid: the input's voxel grid (LPS, mm), as the reader recorded it.
        is_dicom: the input was a DICOM series.
        frame_of_reference: the series' FrameOfReferenceUID ("" when absent or not DICOM).
    """

    grid: VoxelGrid
    is_dicom: bool
    frame_of_reference: str = ""


def add_resample_argument(parser: argparse.ArgumentParser) -> None:
    """``--resample``: read tilted or unevenly spaced DICOM series onto a regular grid (the bundle's
    ``dicom_resample`` id); the output then lies on that grid, not on the original slices."""
    parser.add_argument(
        "--resample",
        action="store_true",
        help="DICOM series with a gantry tilt or uneven slice spacing: resample them onto a regular grid (refused "
        "without it); the output lies on that grid, so DICOM SEG output is not available",
    )


def read_source_scan(inputs: list[Path], resample: bool = False, channels: int | None = None) -> SourceScan:
    """Read every input's headers as the bundle's reader will (:class:`~monai_unet.io.SimpleITKReader`'s header
    checks); keep the grid. No voxel is decoded.

    Args:
        inputs: one file or DICOM folder per channel, or one 4D file holding every channel as a volume.
        resample: read a tilted or unevenly spaced DICOM series onto a regular grid (as ``--resample`` makes the
            bundle do), instead of refusing it.
        channels: the channels the bundle takes (None: unstated); a single input for several is read as 4D.

    Raises:
        ImageInputError: an unreadable header, an awkward DICOM series, channels on different grids, one input
            whose volumes are not the bundle's channels.
    """
    from monai_unet.io import ImageInputError

    reader, pending = _as_the_bundle_reads(inputs, resample, channels)
    header = reader.read_header(pending)
    if reader.options["allow_4d"] and header.channels != channels:
        raise ImageInputError(
            inputs[0],
            f"holds {header.channels} channel(s), but the bundle takes {channels}",
            "give one file per channel, or one file holding them all (a 4D file, an RGB picture)",
        )
    return SourceScan(
        grid=header.grid,
        is_dicom=header.meta.get("source_format") == "dicom",
        frame_of_reference=str(header.meta.get("FrameOfReferenceUID", "") or ""),
    )


def damaged_input(inputs: list[Path], resample: bool = False, channels: int | None = None) -> Exception | None:
    """Our reader's refusal of ``inputs`` when their voxels are damaged, else None: after a bundle's run failed with
    an error of its own, this decodes the scan (all of :class:`~monai_unet.io.SimpleITKReader`'s checks) to tell
    damaged input (exit 2, naming the file) from a failure of the bundle."""
    from monai_unet.io import ImageInputError

    reader, pending = _as_the_bundle_reads(inputs, resample, channels)
    try:
        reader.get_data(pending, contiguous=False)
    except ImageInputError as error:
        return error
    return None


def _as_the_bundle_reads(inputs: list[Path], resample: bool, channels: int | None):
    """A reader set as the bundle's (a single input for several channels is read as 4D) and what it will read."""
    from monai_unet.io import SimpleITKReader

    reader = SimpleITKReader(resample=resample, allow_4d=len(inputs) == 1 and (channels or 1) > 1)
    return reader, reader.read([str(p) for p in inputs] if len(inputs) > 1 else str(inputs[0]))


def check_output_grid(written: Path, grid: VoxelGrid, atol_mm: float = _GEOMETRY_TOLERANCE_MM) -> None:
    """Refuse a written NIfTI/.seg.nrrd whose size, origin, spacing or direction differ from the input's ``grid``.

    Only the spatial axes are compared (read from the file's header): a probability map's trailing channel axes
    are ignored.

    Raises:
        BundleRunError: naming the quantity that differs (an internal error: the bundle did not invert its
            preprocessing).
    """
    from monai_unet.io.grid import VoxelGrid

    for what, got, expected in VoxelGrid.from_header(written, ndim=grid.ndim).differences(grid, atol_mm):
        raise BundleRunError(
            f"{written.name}: the bundle wrote a segmentation whose {what} {got} differs from the input's "
            f"{expected}; its inverse preprocessing is wrong"
        )
