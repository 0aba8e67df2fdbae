"""DICOM headers: discovering a series' files, grouping and selecting series, UIDs, and each slice's (or each
frame's) position, orientation and spacing, from classic files or an enhanced file's functional groups."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from monai_unet.errors import listed
from monai_unet.io.errors import ImageInputError

__all__ = ["DicomSeriesInfo", "is_dicom_file", "list_dicom_series"]


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
        warnings.warn(
            f"{folder}: ignored {len(ignored)} file(s) that are not DICOM images: {listed(ignored)}", stacklevel=3
        )
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
