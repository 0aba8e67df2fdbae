"""A DICOM series as one volume: the stack checks (orientation, duplicates, tilt, spacing), pixel decoding with
the rescale, resampling onto a regular grid, and :func:`read_dicom_series`, which puts them together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from monai_unet.io.axes import reversed_axes_contiguous
from monai_unet.io.dicom.headers import (
    _classic_slices,
    _multiframe_slices,
    _pydicom,
    _scan,
    _select,
    _series_meta,
    _Slice,
    _uid,
)
from monai_unet.io.errors import ImageInputError
from monai_unet.io.grid import VoxelGrid
from monai_unet.io.volume import Volume

__all__ = ["read_dicom_header", "read_dicom_series"]

_ORIENTATION_TOLERANCE = 1e-3  # largest difference between direction cosines of slices of one volume
_DUPLICATE_TOLERANCE_MM = 1e-3  # slices closer than this along the normal are at the same position
_TILT_TOLERANCE = 1e-3  # tan(angle) between the slice-to-slice step and the slice normal


@dataclass
class _StackGeometry:
    order: list[int]  # indices into the slice list, along the normal
    positions: np.ndarray  # (n, 3) ImagePositionPatient in that order
    along_normal: np.ndarray  # (n,) positions projected on the normal (mm)
    row: np.ndarray
    column: np.ndarray
    normal: np.ndarray
    pixel_spacing: np.ndarray  # (between rows, between columns)
    slice_spacing: float
    regular: bool  # False: tilted or unevenly spaced (only with resample=True)


def _check_stack(
    folder: Path, slices: list[_Slice], *, min_slices: int, spacing_tolerance: float, resample: bool
) -> _StackGeometry:
    """Run the checks of a series and work out its slice order and grid; see the module docstring."""
    first = slices[0]
    for s in slices[1:]:
        if np.abs(s.orientation - first.orientation).max() > _ORIENTATION_TOLERANCE:
            raise ImageInputError(
                folder,
                f"mixes slice orientations in one series: {first.label} has ImageOrientationPatient "
                f"{np.round(first.orientation, 4).tolist()}, {s.label} has {np.round(s.orientation, 4).tolist()}",
                "several stacks (e.g. a localizer, or sagittal and axial) share one SeriesInstanceUID; put the files "
                "of one stack in their own folder",
            )
        if np.abs(s.pixel_spacing - first.pixel_spacing).max() > 1e-4:
            raise ImageInputError(
                folder,
                f"mixes pixel spacings: {first.label} {first.pixel_spacing.tolist()} mm, "
                f"{s.label} {s.pixel_spacing.tolist()} mm",
                "select the files of one stack",
            )
    if len(slices) < min_slices:
        raise ImageInputError(
            folder,
            f"has only {len(slices)} slice(s) in this series; at least {min_slices} are needed for a 3D volume",
            "a localizer or an incomplete export? export the whole series (min_slices lowers the limit)",
        )
    row = first.orientation[:3] / np.linalg.norm(first.orientation[:3])
    column = first.orientation[3:] / np.linalg.norm(first.orientation[3:])
    normal = np.cross(row, column)
    projected = np.array([s.position @ normal for s in slices])
    order = [int(i) for i in np.argsort(projected, kind="stable")]
    along = projected[order]
    positions = np.stack([slices[i].position for i in order])
    labels = [slices[i].label for i in order]
    steps = np.diff(along)
    if len(steps) and steps.min() < _DUPLICATE_TOLERANCE_MM:
        k = int(np.argmin(steps))
        raise ImageInputError(
            folder,
            f"has two slices at the same position {along[k]:.3f} mm along the normal ({labels[k]} and {labels[k + 1]})",
            "the series holds several volumes (echoes, phases, time points or a repeated scan); split them into "
            "separate folders",
        )
    regular = True
    travel = positions[-1] - positions[0]
    off_normal = travel - (travel @ normal) * normal
    tilt = float(np.linalg.norm(off_normal) / abs(travel @ normal))
    if tilt > _TILT_TOLERANCE:
        if not resample:
            raise ImageInputError(
                folder,
                f"is acquired with a gantry tilt of {np.degrees(np.arctan(tilt)):.2f}°: slice positions move "
                f"{np.linalg.norm(off_normal):.2f} mm sideways from {labels[0]} to {labels[-1]}, so the slices are "
                "not stacked along their normal and a plain stack would be sheared",
                "resample it onto a regular grid: monai-unet segment --resample, or SimpleITKReader(resample=True)",
            )
        regular = False
    median = float(np.median(steps))
    deviation = np.abs(steps - median)
    if deviation.max() > spacing_tolerance * median + 1e-4:
        if not resample:
            k = int(np.argmax(deviation))
            ratio = steps[k] / median
            kind = f"a missing slice ({round(ratio) - 1} slice(s))" if abs(ratio - round(ratio)) < 0.05 else None
            what = kind or "non-uniform spacing"
            raise ImageInputError(
                folder,
                f"has {what}: the gap between {labels[k]} ({along[k]:.3f} mm) and {labels[k + 1]} "
                f"({along[k + 1]:.3f} mm) is {steps[k]:.3f} mm, the usual slice spacing is {median:.3f} mm",
                "export the complete series, or interpolate it onto a regular grid: monai-unet segment --resample, "
                "or SimpleITKReader(resample=True)",
            )
        regular = False
    return _StackGeometry(
        order, positions, along, row, column, normal, first.pixel_spacing, median if regular else 0.0, regular
    )


# --- pixels --------------------------------------------------------------------------------------------------------


def _read_classic_pixels(files: list[Path]) -> np.ndarray:
    """Decode single-frame files in the given order; returns (slices, rows, columns), rescale applied."""
    planes = []
    for path in files:
        try:
            image = sitk.ReadImage(str(path), imageIO="GDCMImageIO")
        except RuntimeError as error:
            message = str(error).strip().splitlines()[-1]
            raise ImageInputError(path, f"cannot decode its pixels ({message})", "the file is damaged") from None
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise ImageInputError(path, "is a colour image, not a greyscale slice", "only CT/MR/PET series are read")
        planes.append(sitk.GetArrayViewFromImage(image).reshape(image.GetHeight(), image.GetWidth()).copy())
    dtype = np.result_type(*planes)
    return np.stack(planes).astype(dtype, copy=False)


def _apply_rescale(stored: np.ndarray, rescale: list[tuple[float, float]]) -> np.ndarray:
    """Stored values → modality values (HU for CT); integer output when every slope is 1 and intercept whole."""
    slopes = np.array([s for s, _ in rescale])
    intercepts = np.array([i for _, i in rescale])
    if np.all(slopes == 1.0) and np.all(intercepts == np.round(intercepts)):
        values = stored.astype(np.int32) + intercepts.astype(np.int32)[:, None, None]
        for dtype in (np.uint16, np.int16, np.int32):
            info = np.iinfo(dtype)
            if values.min() >= info.min and values.max() <= info.max:
                return values.astype(dtype)
        return values
    return (stored.astype(np.float32) * slopes[:, None, None] + intercepts[:, None, None]).astype(np.float32)


def _read_multiframe_pixels(path: Path) -> np.ndarray:
    pydicom = _pydicom()
    dataset = pydicom.dcmread(path)
    if int(dataset.get("SamplesPerPixel", 1)) != 1:
        raise ImageInputError(path, "is a colour image, not a greyscale volume", "only CT/MR/PET volumes are read")
    try:
        pixels = dataset.pixel_array
    except Exception as error:  # pydicom raises several types for missing codecs and damaged data
        raise ImageInputError(
            path, f"cannot decode its pixels ({error})", "install pylibjpeg and its plugins for compressed files"
        ) from None
    return pixels.reshape(-1, int(dataset.Rows), int(dataset.Columns))


# --- resampling of irregular stacks ---------------------------------------------------------------------------------


def _regular_grid(geometry: _StackGeometry, rows: int, cols: int) -> VoxelGrid:
    """The regular grid a tilted or unevenly spaced stack of ``rows`` × ``cols`` slices is resampled onto: z along
    the table (first → last slice position), x the row direction, in-plane spacing the pixel spacing, z spacing the
    median step; its extent covers every corner of every slice."""
    positions = geometry.positions
    dy, dx = geometry.pixel_spacing
    z_axis = positions[-1] - positions[0]
    z_axis /= np.linalg.norm(z_axis)
    x_axis = geometry.row - (geometry.row @ z_axis) * z_axis
    x_axis /= np.linalg.norm(x_axis)
    y_axis = np.cross(z_axis, x_axis)
    direction = np.stack([x_axis, y_axis, z_axis], axis=1)
    dz = float(np.median(np.diff(positions @ z_axis)))
    corners = []
    for p in positions:
        for u in (0, cols - 1):
            for v in (0, rows - 1):
                corners.append(p + u * dx * geometry.row + v * dy * geometry.column)
    local = np.stack(corners) @ direction
    low, high = local.min(axis=0), local.max(axis=0)
    size = np.floor((high - low) / np.array([dx, dy, dz]) + 1e-6).astype(int) + 1
    return VoxelGrid(tuple(int(n) for n in size), (dx, dy, dz), direction @ low, direction)


def _resample_regular(stack: np.ndarray, geometry: _StackGeometry, grid: VoxelGrid) -> np.ndarray:
    """Trilinear resampling of a tilted or unevenly spaced stack onto ``grid`` (:func:`_regular_grid`).

    Args:
        stack: (slices, rows, columns) voxels in the order of ``geometry``.
        geometry: the stack's slice positions and in-plane axes.
        grid: the regular target grid.

    Returns:
        The volume (x, y, z), float32.
    """
    from scipy.ndimage import map_coordinates

    positions, normal = geometry.positions, geometry.normal
    dy, dx = geometry.pixel_spacing
    dz = grid.spacing[2]
    size, origin = grid.size, np.asarray(grid.origin)
    x_axis, y_axis, z_axis = grid.direction.T
    grid_x = np.arange(size[0]) * dx
    grid_y = np.arange(size[1]) * dy
    plane = origin + grid_x[:, None, None] * x_axis + grid_y[None, :, None] * y_axis  # (nx, ny, 3)
    source = stack.astype(np.float32, copy=False)
    fill = float(source.min())
    along = geometry.along_normal
    slice_index = np.arange(len(along), dtype=np.float64)
    out = np.empty(tuple(size), dtype=np.float32)
    for k in range(size[2]):
        points = plane + k * dz * z_axis
        s = points @ normal
        kf = np.interp(s, along, slice_index, left=-1.0, right=len(along))
        # The slice origin moves linearly between neighbouring slices; in-plane coordinates are relative to it.
        k0 = np.clip(np.floor(kf), 0, len(along) - 1).astype(int)
        k1 = np.clip(k0 + 1, 0, len(along) - 1)
        w = np.clip(kf - k0, 0.0, 1.0)[..., None]
        slice_origin = (1 - w) * positions[k0] + w * positions[k1]
        offset = points - slice_origin
        u = offset @ geometry.row / dx
        v = offset @ geometry.column / dy
        out[:, :, k] = map_coordinates(source, [kf, v, u], order=1, mode="constant", cval=fill)
    return out


# --- entry point ----------------------------------------------------------------------------------------------------


def read_dicom_series(
    source: str | PathLike | Sequence[str | PathLike],
    *,
    series_uid: str | None = None,
    min_slices: int = 3,
    spacing_tolerance: float = 0.01,
    resample: bool = False,
    skip_unreadable: bool = False,
) -> Volume:
    """Read one DICOM series (classic single-frame files or one enhanced multi-frame file) as a 3D volume.

    Args:
        source: a folder holding the series (files directly in it), or a list of its files.
        series_uid: the SeriesInstanceUID to read when the folder holds several series ("" selects a series
            whose files leave the UID empty).
        min_slices: fewest slices accepted as a volume (default 3; 2-frame enhanced CT samples need 2).
        spacing_tolerance: largest accepted deviation of a slice-to-slice gap from the median gap, as a fraction
            of it (default 1%); above it the series is refused as having a missing slice or uneven spacing.
        resample: resample tilted or unevenly spaced series onto a regular grid instead of refusing them
            (trilinear, float32 output; see the module docstring).
        skip_unreadable: ignore damaged DICOM files (with a warning) instead of refusing the series.

    Returns:
        Voxels (x = columns, y = rows, z = slices along the normal) in modality units (HU for CT), the LPS
        geometry, and meta with the series' UIDs and files in slice order (see :mod:`monai_unet.io.reader`).

    Raises:
        ImageInputError: any of the problems listed in the module docstring.
    """
    layout = _layout(source, series_uid, min_slices, spacing_tolerance, resample, skip_unreadable)
    geometry, files = layout.geometry, [Path(f) for f in layout.meta["source_files"]]
    if layout.frame_rescale is not None:  # one multi-frame file
        stack = _apply_rescale(_read_multiframe_pixels(files[0]), layout.frame_rescale)[geometry.order]
    else:
        stack = _read_classic_pixels(files)  # in slice order
    if geometry.regular:
        return Volume(reversed_axes_contiguous(stack, 3), layout.grid, layout.meta)  # (slices, rows, cols) → (x, y, z)
    return Volume(_resample_regular(stack, geometry, layout.grid), layout.grid, layout.meta)


def read_dicom_header(source: str | PathLike | Sequence[str | PathLike], **options: Any) -> tuple[VoxelGrid, dict]:
    """The grid and meta :func:`read_dicom_series` would return, from the headers alone (no pixel is decoded);
    every check on the series' headers runs. ``options`` and errors as there (its keyword arguments); a pixel
    payload that cannot be decoded is only found by reading the series."""
    layout = _layout(source, **options)
    return layout.grid, layout.meta


@dataclass
class _Layout:
    """What the headers of a series say: its stack geometry, grid (resampled or not) and meta (``source_files``:
    where the pixels are, in slice order or the one multi-frame file); ``frame_rescale``: each frame's (slope,
    intercept) of a multi-frame file, None for classic slices (each file applies its own)."""

    geometry: _StackGeometry
    grid: VoxelGrid
    meta: dict
    frame_rescale: list[tuple[float, float]] | None


def _layout(
    source: str | PathLike | Sequence[str | PathLike],
    series_uid: str | None,
    min_slices: int,
    spacing_tolerance: float,
    resample: bool,
    skip_unreadable: bool,
) -> _Layout:
    folder, headers = _scan(source, skip_unreadable)
    members = _select(folder, headers, series_uid)
    multiframe = [(p, h) for p, h in members if int(h.get("NumberOfFrames", 1) or 1) > 1]
    if multiframe and len(members) > 1:
        raise ImageInputError(
            folder,
            f"mixes {len(multiframe)} multi-frame file(s) with {len(members) - len(multiframe)} other file(s) in "
            "one series",
            "pass the multi-frame file on its own",
        )
    if multiframe:
        path, header = multiframe[0]
        slices, rescale = _multiframe_slices(path, header)
        geometry = _check_stack(
            path, slices, min_slices=min_slices, spacing_tolerance=spacing_tolerance, resample=resample
        )
        sop = _uid(header, "SOPInstanceUID", "MediaStorageSOPInstanceUID")
        meta = {**_series_meta(header, [sop], [path]), "frame_order": geometry.order}
    else:
        slices = _classic_slices(members)
        geometry = _check_stack(
            folder, slices, min_slices=min_slices, spacing_tolerance=spacing_tolerance, resample=resample
        )
        ordered = [members[i] for i in geometry.order]
        header = ordered[0][1]
        sops = [_uid(h, "SOPInstanceUID", "MediaStorageSOPInstanceUID") for _, h in ordered]
        meta, rescale = _series_meta(header, sops, [p for p, _ in ordered]), None
    rows, cols = int(header.Rows), int(header.Columns)
    if geometry.regular:
        dy, dx = geometry.pixel_spacing
        direction = np.stack([geometry.row, geometry.column, geometry.normal], axis=1)
        size = (cols, rows, len(geometry.order))
        grid = VoxelGrid(size, (dx, dy, geometry.slice_spacing), geometry.positions[0], direction)
    else:
        grid, meta["resampled"] = _regular_grid(geometry, rows, cols), True
    return _Layout(geometry, grid, meta, rescale)
