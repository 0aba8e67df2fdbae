"""DICOM series → one 3D volume with its geometry, refusing awkward series with a clear error.

What happens to a folder (or a list of files):

1. **Discovery.** Every file directly in the folder (not in sub-folders) is opened with pydicom, headers only.
   Files that are not DICOM, and DICOM files without pixels (DICOMDIR, structured reports), are **ignored with
   a warning** naming them, so that a ``README`` or ``.DS_Store`` in an export does not block reading. A folder
   with no DICOM image at all is an error. A *damaged* DICOM file (``DICM`` preamble, unreadable header) is an
   error naming it, wherever it lies in the stack, unless ``skip_unreadable=True`` (then it is ignored with the
   warning, and the checks below see the gap it leaves).
2. **Selection.** Images are grouped by SeriesInstanceUID (an empty UID is a valid group). Several series raise
   an error listing each one (UID, description, slice count) unless ``series_uid`` selects one.
3. **Checks**, each its own :class:`~monai_unet.io.errors.ImageInputError` naming the folder, the files and what
   to do: fewer than ``min_slices`` slices; slices of different size; inconsistent ImageOrientationPatient;
   two slices at one position (several echoes/phases/time points in one series); gantry tilt (slice positions
   that do not advance along the slice normal); a missing slice or otherwise non-uniform spacing (naming the
   gap and its neighbouring files).
4. **Order and geometry.** Slices are sorted by ImagePositionPatient projected on the slice normal
   (row × column direction), never by InstanceNumber or file name. The volume's axes are x along a row, y down
   the rows, z along the normal; its origin is the first slice's ImagePositionPatient (LPS, mm).
5. **Pixels.** Classic single-frame series are decoded by SimpleITK/GDCM file by file (JPEG 2000, JPEG lossless,
   JPEG-LS and RLE included) with each file's RescaleSlope/Intercept applied, so CT comes out in HU. Enhanced
   (multi-frame) CT/MR files are decoded by pydicom and placed by their per-frame functional groups
   (PlanePosition, PlaneOrientation, PixelMeasures, PixelValueTransformation).

With ``resample=True`` a tilted or unevenly spaced series is instead resampled (trilinear) onto a regular grid
whose z axis follows the table (first → last slice position), whose x axis is the row direction and whose
in-plane spacing is the pixel spacing; voxels outside the scanned region get the series' minimum value. The
result is float32 and its meta carries ``resampled = True``. A missing slice is then bridged by interpolation,
so only use it when that is acceptable.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from monai_unet.io.errors import ImageInputError
from monai_unet.io.volume import Volume, reversed_axes_contiguous

__all__ = ["DicomSeriesInfo", "is_dicom_file", "list_dicom_series", "read_dicom_series"]

_ORIENTATION_TOLERANCE = 1e-3  # largest difference between direction cosines of slices of one volume
_DUPLICATE_TOLERANCE_MM = 1e-3  # slices closer than this along the normal are at the same position
_TILT_TOLERANCE = 1e-3  # tan(angle) between the slice-to-slice step and the slice normal


def _pydicom():
    try:
        import pydicom
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ImportError("reading DICOM needs pydicom: pip install 'monai-unet[dicom]'") from error
    return pydicom


def is_dicom_file(path: str | PathLike) -> bool:
    """True when ``path`` is a file with the DICOM Part 10 preamble (``DICM`` at byte 128)."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


@dataclass
class DicomSeriesInfo:
    """One series found in a folder.

    Args:
        uid: SeriesInstanceUID ("" where the files leave it empty).
        description: SeriesDescription ("" when absent).
        number: SeriesNumber, or None.
        modality: Modality ("CT", "MR", ...).
        files: the files of the series, in discovery (name) order.
        frames: number of images: files, or frames for an enhanced multi-frame file.
    """

    uid: str
    description: str
    number: int | None
    modality: str
    files: list[Path]
    frames: int

    def summary(self) -> str:
        """``UID '...' (description, N slices)`` for error messages."""
        uid = self.uid or "<empty>"
        return f"SeriesInstanceUID {uid} ('{self.description}', series {self.number}, {self.frames} slices)"


@dataclass
class _Slice:
    """Geometry of one 2D image (a file, or one frame of a multi-frame file)."""

    label: str
    position: np.ndarray  # ImagePositionPatient (LPS, mm)
    orientation: np.ndarray  # ImageOrientationPatient: row direction (3) then column direction (3)
    pixel_spacing: np.ndarray  # (between rows, between columns) in mm
    index: int  # file index (classic) or frame index (multi-frame)


def _float_list(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    try:
        return np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _scan(
    source: str | PathLike | Sequence[str | PathLike], skip_unreadable: bool = False
) -> tuple[Path, list[tuple[Path, Any]]]:
    """Headers of the DICOM image files in a folder (or list); returns (folder for messages, [(path, header)]).

    A file that starts as DICOM (``DICM`` at byte 128) or is named ``.dcm``/``.ima`` but whose header cannot be
    read, or an image-storage file
    whose header ends before Rows/Columns, is damaged, not foreign: it is refused, naming it, since dropping it
    would silently shorten the volume, unless ``skip_unreadable``."""
    pydicom = _pydicom()
    if isinstance(source, (str, PathLike)):
        folder = Path(source)
        if not folder.is_dir():
            raise ImageInputError(folder, "is not a folder", "pass the folder that holds the DICOM series")
        entries = sorted(folder.iterdir())
        files = [p for p in entries if p.is_file()]
        if not entries:
            raise ImageInputError(folder, "is empty", "pass the folder that holds the DICOM files of the series")
        if not files:
            subfolders = ", ".join(p.name for p in entries if p.is_dir())[:200]
            raise ImageInputError(folder, f"holds no files, only sub-folders ({subfolders})", "pass one of them")
    else:
        files = [Path(p) for p in source]
        if not files:
            raise ImageInputError("<empty list>", "no DICOM files given", "pass a folder or a list of files")
        folder = files[0].parent
    headers, ignored = [], []
    for path in files:
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except (pydicom.errors.InvalidDicomError, OSError, EOFError, ValueError) as error:
            if (is_dicom_file(path) or path.suffix.lower() in (".dcm", ".ima")) and not skip_unreadable:
                raise ImageInputError(
                    path,
                    f"is a damaged DICOM file: its header cannot be read ({' '.join(str(error).split())[:200]})",
                    "replace it from the original export, or read the series without it (skip_unreadable=True)",
                ) from None
            ignored.append(path.name)
            continue
        if "Rows" not in header or "Columns" not in header:
            storage = getattr(header.get("file_meta", {}), "MediaStorageSOPClassUID", None)
            if storage is not None and "Image Storage" in storage.name and not skip_unreadable:
                raise ImageInputError(  # an image whose header ends early: cut short in a copy or transfer
                    path,
                    f"is a damaged DICOM file: its header cannot be read (a {storage.name} file without Rows/Columns)",
                    "replace it from the original export, or read the series without it (skip_unreadable=True)",
                )
            ignored.append(path.name)  # DICOMDIR, SR, presentation state: no image
            continue
        headers.append((path, header))
    if not headers:
        raise ImageInputError(
            folder, f"holds no DICOM image files ({len(files)} other files)", "point to the folder of the series"
        )
    if ignored:
        shown = ", ".join(ignored[:5]) + (f" and {len(ignored) - 5} more" if len(ignored) > 5 else "")
        warnings.warn(f"{folder}: ignored {len(ignored)} file(s) that are not DICOM images: {shown}", stacklevel=3)
    return folder, headers


def _group(headers: list[tuple[Path, Any]]) -> dict[str, list[tuple[Path, Any]]]:
    groups: dict[str, list[tuple[Path, Any]]] = {}
    for path, header in headers:
        groups.setdefault(str(header.get("SeriesInstanceUID", "") or ""), []).append((path, header))
    return groups


def _info(uid: str, members: list[tuple[Path, Any]]) -> DicomSeriesInfo:
    header = members[0][1]
    number = header.get("SeriesNumber")
    frames = sum(int(h.get("NumberOfFrames", 1) or 1) for _, h in members)
    return DicomSeriesInfo(
        uid=uid,
        description=str(header.get("SeriesDescription", "") or ""),
        number=int(number) if number not in (None, "") else None,
        modality=str(header.get("Modality", "") or ""),
        files=[p for p, _ in members],
        frames=frames,
    )


def list_dicom_series(folder: str | PathLike) -> list[DicomSeriesInfo]:
    """The DICOM series in ``folder`` (files directly in it), by SeriesNumber then UID.

    Raises:
        ImageInputError: the folder is missing, empty or holds no DICOM image.
    """
    _, headers = _scan(folder)
    infos = [_info(uid, members) for uid, members in _group(headers).items()]
    return sorted(infos, key=lambda s: (s.number if s.number is not None else -1, s.uid))


def _select(folder: Path, headers: list[tuple[Path, Any]], series_uid: str | None) -> list[tuple[Path, Any]]:
    groups = _group(headers)
    if series_uid is not None:
        if series_uid not in groups:
            listing = "; ".join(_info(u, m).summary() for u, m in groups.items())
            raise ImageInputError(folder, f"has no series {series_uid!r}; it holds: {listing}", "check series_uid")
        return groups[series_uid]
    if len(groups) > 1:
        listing = "; ".join(_info(u, m).summary() for u, m in groups.items())
        raise ImageInputError(
            folder,
            f"holds {len(groups)} DICOM series: {listing}",
            "select one with series_uid=... (SimpleITKReader(series_uid=...)) or move each series to its own folder",
        )
    return next(iter(groups.values()))


def _uid(header: Any, keyword: str, meta_keyword: str | None = None) -> str:
    value = str(header.get(keyword, "") or "")
    if not value and meta_keyword is not None and hasattr(header, "file_meta"):
        value = str(header.file_meta.get(meta_keyword, "") or "")
    return value


def _series_meta(header: Any, sop_uids: list[str], files: list[Path]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "source_format": "dicom",
        "source_files": [str(f) for f in files],
        "SOPInstanceUIDs": sop_uids,
        "SOPClassUID": _uid(header, "SOPClassUID", "MediaStorageSOPClassUID"),
    }
    for keyword in (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "FrameOfReferenceUID",
        "Modality",
        "SeriesDescription",
        "SeriesNumber",
        "PatientID",
        "PatientName",
        "StudyDate",
        "StudyID",
        "AccessionNumber",
        "Manufacturer",
    ):
        value = header.get(keyword, "")
        meta[keyword] = "" if value is None else str(value)
    return meta


# --- geometry of the slices ------------------------------------------------------------------------------------


def _classic_slices(members: list[tuple[Path, Any]]) -> list[_Slice]:
    slices = []
    for i, (path, header) in enumerate(members):
        position = _float_list(header.get("ImagePositionPatient"))
        orientation = _float_list(header.get("ImageOrientationPatient"))
        spacing = _float_list(header.get("PixelSpacing"))
        if position is None or orientation is None or len(position) != 3 or len(orientation) != 6:
            raise ImageInputError(
                path,
                "has no ImagePositionPatient/ImageOrientationPatient, so it cannot be placed in a volume",
                "this is a secondary capture or projection image, not a slice of a 3D series",
            )
        if spacing is None or len(spacing) != 2:
            raise ImageInputError(path, "has no PixelSpacing", "the in-plane voxel size is unknown; fix the export")
        slices.append(_Slice(path.name, position, orientation, spacing, i))
    sizes = {(int(h.Rows), int(h.Columns)) for _, h in members}
    if len(sizes) > 1:
        raise ImageInputError(
            members[0][0].parent,
            f"mixes slices of different sizes {sorted(sizes)} in one series",
            "export the series again or select the files of one stack",
        )
    return slices


def _functional(frame: Any, shared: Any, sequence: str) -> Any | None:
    """Item of a functional-group macro for one frame: per-frame first, then shared."""
    for group in (frame, shared):
        items = group.get(sequence) if group is not None else None
        if items:
            return items[0]
    return None


def _multiframe_slices(path: Path, header: Any) -> tuple[list[_Slice], list[tuple[float, float]]]:
    """Geometry and rescale (slope, intercept) of every frame of an enhanced multi-frame file."""
    per_frame = header.get("PerFrameFunctionalGroupsSequence")
    if per_frame is None:
        raise ImageInputError(
            path,
            f"is a multi-frame {header.get('SOPClassUID', 'image')} without per-frame functional groups, so its "
            "frames have no positions",
            "only enhanced CT/MR multi-frame files can be read as volumes",
        )
    shared_sequence = header.get("SharedFunctionalGroupsSequence")
    shared = shared_sequence[0] if shared_sequence else None
    slices, rescale = [], []
    for i, frame in enumerate(per_frame):
        label = f"frame {i + 1} of {path.name}"
        position_item = _functional(frame, shared, "PlanePositionSequence")
        orientation_item = _functional(frame, shared, "PlaneOrientationSequence")
        measures = _functional(frame, shared, "PixelMeasuresSequence")
        position = _float_list(position_item.get("ImagePositionPatient")) if position_item else None
        orientation = _float_list(orientation_item.get("ImageOrientationPatient")) if orientation_item else None
        spacing = _float_list(measures.get("PixelSpacing")) if measures else None
        if position is None or orientation is None or spacing is None:
            raise ImageInputError(
                path, f"{label} lacks its plane position, orientation or pixel spacing", "the file cannot be placed"
            )
        slices.append(_Slice(label, position, orientation, spacing, i))
        transform = _functional(frame, shared, "PixelValueTransformationSequence")
        source = transform if transform is not None else header
        slope = float(source.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(source.get("RescaleIntercept", 0.0) or 0.0)
        rescale.append((slope, intercept))
    return slices, rescale


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
                "read it with resample=True (SimpleITKReader(resample=True)) to resample onto a regular grid",
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
                "export the complete series, or read it with resample=True to interpolate onto a regular grid",
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


def _resample_regular(stack: np.ndarray, geometry: _StackGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Trilinear resampling of a tilted or unevenly spaced stack onto a regular grid.

    Args:
        stack: (slices, rows, columns) voxels in the order of ``geometry``.
        geometry: the stack's slice positions and in-plane axes.

    Returns:
        (volume (x, y, z) float32, origin LPS (3,), direction (3, 3) with axis columns, z spacing in mm).
    """
    from scipy.ndimage import map_coordinates

    positions, normal = geometry.positions, geometry.normal
    dy, dx = geometry.pixel_spacing
    rows, cols = stack.shape[1:]
    z_axis = positions[-1] - positions[0]
    z_axis /= np.linalg.norm(z_axis)
    x_axis = geometry.row - (geometry.row @ z_axis) * z_axis
    x_axis /= np.linalg.norm(x_axis)
    y_axis = np.cross(z_axis, x_axis)
    direction = np.stack([x_axis, y_axis, z_axis], axis=1)
    z_steps = np.diff(positions @ z_axis)
    dz = float(np.median(z_steps))
    # Extent: every corner of every source slice, in the target axes.
    corners = []
    for p in positions:
        for u in (0, cols - 1):
            for v in (0, rows - 1):
                corners.append(p + u * dx * geometry.row + v * dy * geometry.column)
    local = np.stack(corners) @ direction
    low, high = local.min(axis=0), local.max(axis=0)
    step = np.array([dx, dy, dz])
    size = np.floor((high - low) / step + 1e-6).astype(int) + 1
    origin = direction @ low
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
    return out, origin, direction, dz


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
        frames = _apply_rescale(_read_multiframe_pixels(path), rescale)
        stack = frames[geometry.order]
        sop = _uid(header, "SOPInstanceUID", "MediaStorageSOPInstanceUID")
        meta = _series_meta(header, [sop], [path])
        meta["frame_order"] = geometry.order
    else:
        slices = _classic_slices(members)
        geometry = _check_stack(
            folder, slices, min_slices=min_slices, spacing_tolerance=spacing_tolerance, resample=resample
        )
        ordered = [members[i] for i in geometry.order]
        stack = _read_classic_pixels([p for p, _ in ordered])
        sops = [_uid(h, "SOPInstanceUID", "MediaStorageSOPInstanceUID") for _, h in ordered]
        meta = _series_meta(ordered[0][1], sops, [p for p, _ in ordered])
    dy, dx = geometry.pixel_spacing
    if geometry.regular:
        array = reversed_axes_contiguous(stack, 3)  # (slices, rows, columns) → (x, y, z)
        direction = np.stack([geometry.row, geometry.column, geometry.normal], axis=1)
        return Volume(array, geometry.positions[0].copy(), np.array([dx, dy, geometry.slice_spacing]), direction, meta)
    array, origin, direction, dz = _resample_regular(stack, geometry)
    meta["resampled"] = True
    return Volume(array, origin, np.array([dx, dy, dz]), direction, meta)
