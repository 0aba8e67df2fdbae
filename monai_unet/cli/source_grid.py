"""The input's grid as ``monai-unet segment`` reads it, and the check that an output lies on it.

The CLI reads every input once before inference (so a damaged file is refused first) and keeps its grid in LPS
terms; after inference, each written segmentation must have the same size, origin, spacing and direction, else the
bundle's inverse preprocessing is wrong (an internal error, never a silently shifted result).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from monai_unet.cli.bundle import BundleRunError

__all__ = ["SourceGrid", "add_resample_argument", "check_output_grid", "read_source_grid"]

_GEOMETRY_TOLERANCE_MM = 1e-3  # NIfTI stores the grid in float32: about 3e-5 mm at 500 mm from the origin


@dataclass(frozen=True)
class SourceGrid:
    """The input's grid in LPS (DICOM/ITK/Slicer) terms, as the reader saw it.

    Args:
        size: voxels along x, y[, z].
        origin: LPS position (mm) of voxel (0, 0, 0).
        spacing: voxel size (mm) along x, y[, z].
        direction: row-major (ndim × ndim) direction matrix, columns = axes (ITK's ``GetDirection`` order).
        is_dicom: the input was a DICOM series.
        frame_of_reference: the series' FrameOfReferenceUID ("" when absent or not DICOM).
    """

    size: tuple[int, ...]
    origin: tuple[float, ...]
    spacing: tuple[float, ...]
    direction: tuple[float, ...]
    is_dicom: bool
    frame_of_reference: str = ""

    @property
    def ndim(self) -> int:
        """Spatial dimensions (2 or 3)."""
        return len(self.size)


def add_resample_argument(parser: argparse.ArgumentParser) -> None:
    """``--resample``: read tilted or unevenly spaced DICOM series onto a regular grid (the bundle's
    ``dicom_resample`` id); the output then lies on that grid, not on the original slices."""
    parser.add_argument(
        "--resample",
        action="store_true",
        help="DICOM series with a gantry tilt or uneven slice spacing: resample them onto a regular grid (refused "
        "without it); the output lies on that grid, so DICOM SEG output is not available",
    )


def read_source_grid(inputs: list[Path], resample: bool = False) -> SourceGrid:
    """Read every input as the bundle will (all checks of :class:`~monai_unet.io.SimpleITKReader`); keep the grid.

    Args:
        inputs: one file or DICOM folder per channel.
        resample: read a tilted or unevenly spaced DICOM series onto a regular grid (as ``--resample`` makes the
            bundle do), instead of refusing it.

    Raises:
        ImageInputError: an unreadable or damaged file, an awkward DICOM series, channels on different grids.
    """
    import numpy as np

    from monai_unet.io import SimpleITKReader

    reader = SimpleITKReader(resample=resample)
    _, meta = reader.get_data(reader.read([str(p) for p in inputs] if len(inputs) > 1 else str(inputs[0])))
    direction = np.asarray(meta["source_direction_lps"], dtype=np.float64)
    return SourceGrid(
        size=tuple(int(s) for s in meta["spatial_shape"]),
        origin=tuple(float(v) for v in meta["source_origin_lps"]),
        spacing=tuple(float(v) for v in meta["source_spacing"]),
        direction=tuple(float(v) for v in direction.reshape(-1)),
        is_dicom=meta.get("source_format") == "dicom",
        frame_of_reference=str(meta.get("FrameOfReferenceUID", "") or ""),
    )


def check_output_grid(written: Path, grid: SourceGrid, atol_mm: float = _GEOMETRY_TOLERANCE_MM) -> None:
    """Refuse a written NIfTI/.seg.nrrd whose size, origin, spacing or direction differ from the input's.

    Only the spatial axes are compared: a probability map's trailing channel axes are ignored.

    Raises:
        BundleRunError: naming the quantity that differs (an internal error: the bundle did not invert its
            preprocessing).
    """
    import numpy as np
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(written))
    reader.ReadImageInformation()
    n, ndim = grid.ndim, reader.GetDimension()  # a probability file has channel axes after the spatial ones
    direction = np.asarray(reader.GetDirection()).reshape(ndim, ndim)[:n, :n].reshape(-1)
    found = {
        "size": (tuple(reader.GetSize())[:n], grid.size),
        "origin (mm)": (reader.GetOrigin()[:n], grid.origin),
        "spacing (mm)": (reader.GetSpacing()[:n], grid.spacing),
        "direction": (tuple(direction), grid.direction),
    }
    for what, (got, expected) in found.items():
        if len(got) != len(expected) or not np.allclose(got, expected, rtol=0.0, atol=atol_mm):
            raise BundleRunError(
                f"{written.name}: the bundle wrote a segmentation whose {what} {tuple(np.round(got, 4))} differs "
                f"from the input's {tuple(np.round(expected, 4))}; its inverse preprocessing is wrong"
            )
