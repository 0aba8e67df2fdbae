"""DICOM Segmentation Storage (``BINARY``) through highdicom, referencing the source series (extra ``dicom``).

A DICOM SEG only means something next to its source series: every frame names the source image it segments, and
the SEG joins the source's study and frame of reference. So the writer needs the source DICOM files: by default the
files recorded as ``source_files`` in the reference's meta by ``SimpleITKReader`` (or a DICOM folder named by
``filename_or_obj``, as MONAI's readers record it), or ``source_images`` given explicitly. A reference read from
NIfTI/NRRD is refused with a clear error (write ``.nii.gz``/``.seg.nrrd`` instead, or pass the DICOM series it came
from).

Frame mapping: each source frame (single-frame series, or the frames of one enhanced multi-frame image) is located
on the reference grid through its Image Position/Orientation (Patient) and Pixel Spacing; its pixels must land on
voxel centres of the grid (within 0.01 voxel), so the labels are copied, never interpolated. Frames without labels
are omitted (highdicom's default). Label values are renumbered 1..N in increasing order (DICOM segment numbers are
consecutive); each segment's label carries its name and the description records the original value.

Real series are not always complete. Where SOP Class/Instance UID are empty (as in TotalSegmentator's example
series), the file meta's Media Storage UIDs are used; where Study or Series Instance UID is empty, a deterministic
UID derived from the instance UIDs is used and a warning says that a PACS will not file the SEG with its source.
The source files are never modified.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from monai.data import MetaTensor
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

import monai_unet
from monai_unet.io.atomic import atomic_path
from monai_unet.io.errors import ImageInputError
from monai_unet.io.grid import VoxelGrid
from monai_unet.io.segments import Segment
from monai_unet.io.terminology import Code

__all__ = ["SEG_FILE_NAME", "read_source_series", "source_frames", "write_dicom_seg"]

#: Name of the SEG file inside the output directory.
SEG_FILE_NAME = "segmentation.dcm"

_POSITION_TOL_VOXELS = 1e-2


def _is_image(ds: Dataset) -> bool:
    return "ImagePositionPatient" in ds or "PerFrameFunctionalGroupsSequence" in ds


def read_source_series(source: str | PathLike | Sequence[str | PathLike]) -> list[Dataset]:
    """Headers (no pixel data) of the DICOM images in a folder (not recursive) or a list of files.

    Non-DICOM files and DICOM objects without image geometry are skipped; UIDs are repaired as the module
    docstring says. Raises ``ImageInputError`` when no DICOM image is found.
    """
    if isinstance(source, (str, PathLike)):
        folder = Path(source)
        files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else [folder]
        where = folder
    else:
        files, where = [Path(f) for f in source], Path(source[0]).parent if source else Path(".")
    datasets = []
    for file in files:
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True)
        except (InvalidDicomError, OSError):
            continue
        if _is_image(ds):
            datasets.append(ds)
    if not datasets:
        raise ImageInputError(where, "no DICOM image found to reference in the DICOM SEG", "Pass the source series")
    _repair_uids(datasets, where)
    return datasets


def _repair_uids(datasets: list[Dataset], where: Path) -> None:
    for ds in datasets:
        meta = getattr(ds, "file_meta", Dataset())
        for attribute, fallback in (
            ("SOPInstanceUID", "MediaStorageSOPInstanceUID"),
            ("SOPClassUID", "MediaStorageSOPClassUID"),
        ):
            if not ds.get(attribute) and meta.get(fallback):
                setattr(ds, attribute, meta.get(fallback))
        if not ds.get("SOPInstanceUID") or not ds.get("SOPClassUID"):
            raise ImageInputError(where, "a source image has no SOP Instance/Class UID, so the SEG cannot reference it")
    instance_uids = sorted(str(ds.SOPInstanceUID) for ds in datasets)
    for attribute in ("StudyInstanceUID", "SeriesInstanceUID"):
        if all(ds.get(attribute) for ds in datasets):
            continue
        substitute = generate_uid(entropy_srcs=[attribute, *instance_uids])
        warnings.warn(
            f"{where}: the source series has an empty {attribute}; the DICOM SEG uses {substitute} instead, so a PACS "
            "will not file it with its source study/series",
            stacklevel=3,
        )
        for ds in datasets:
            if not ds.get(attribute):
                setattr(ds, attribute, substitute)


def _frame_attribute(ds: Dataset, frame: int, sequence: str, attribute: str) -> list[float]:
    """A functional-group attribute of one frame of an enhanced image (per-frame group first, then shared)."""
    groups = [ds.PerFrameFunctionalGroupsSequence[frame]]
    if "SharedFunctionalGroupsSequence" in ds:
        groups.append(ds.SharedFunctionalGroupsSequence[0])
    for group in groups:
        if sequence in group and attribute in group[sequence][0]:
            return [float(v) for v in group[sequence][0][attribute].value]
    raise ValueError(f"frame {frame} has no {sequence}/{attribute}")


def _planes(ds: Dataset) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(position, orientation (6), pixel spacing (row, column))`` in LPS mm of each frame of ``ds``."""
    if "PerFrameFunctionalGroupsSequence" not in ds:
        return [
            (
                np.asarray(ds.ImagePositionPatient, float),
                np.asarray(ds.ImageOrientationPatient, float),
                np.asarray(ds.PixelSpacing, float),
            )
        ]
    return [
        (
            np.asarray(_frame_attribute(ds, f, "PlanePositionSequence", "ImagePositionPatient")),
            np.asarray(_frame_attribute(ds, f, "PlaneOrientationSequence", "ImageOrientationPatient")),
            np.asarray(_frame_attribute(ds, f, "PixelMeasuresSequence", "PixelSpacing")),
        )
        for f in range(int(ds.NumberOfFrames))
    ]


def _frame_indices(
    plane: tuple[np.ndarray, np.ndarray, np.ndarray], rows: int, columns: int, grid: VoxelGrid
) -> tuple[np.ndarray, ...] | None:
    """Voxel indices ``(i, j, k)`` (each ``rows × columns``) of a frame's pixels, or ``None`` if off the grid."""
    position, orientation, spacing = plane
    to_index = np.linalg.inv(grid.lps_affine())
    start = to_index[:3, :3] @ position + to_index[:3, 3]
    step_column = to_index[:3, :3] @ (orientation[:3] * spacing[1])  # next column: along the row direction
    step_row = to_index[:3, :3] @ (orientation[3:] * spacing[0])  # next row: along the column direction
    exact = [np.round(v) for v in (start, step_column, step_row)]
    if any(
        np.abs(v - r).max() > _POSITION_TOL_VOXELS for v, r in zip((start, step_column, step_row), exact, strict=True)
    ):
        return None
    start, step_column, step_row = (r.astype(np.int64) for r in exact)
    r, c = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    index = [start[a] + c * step_column[a] + r * step_row[a] for a in range(3)]
    if any(ix.min() < 0 or ix.max() >= n for ix, n in zip(index, grid.size, strict=True)):
        return None
    return tuple(index)


def source_frames(
    labels: np.ndarray, grid: VoxelGrid, datasets: list[Dataset], where: Path
) -> tuple[list[Dataset], np.ndarray]:
    """The source images that lie on the grid, and the labels of each of their frames.

    Returns:
        ``(sources, frames)``: one multi-frame image or the single-frame images (sorted by instance number), and
        the label frames, shape ``(n_frames, rows, columns)``, in highdicom's source order.

    Raises:
        ImageInputError: no source frame lies on the grid, or the images that do come from several series.
    """
    kept: list[tuple[Dataset, list[tuple[np.ndarray, ...]]]] = []
    for ds in datasets:
        indices = [_frame_indices(p, int(ds.Rows), int(ds.Columns), grid) for p in _planes(ds)]
        if indices and all(ix is not None for ix in indices):
            kept.append((ds, indices))  # type: ignore[arg-type]
    if not kept:
        raise ImageInputError(
            where,
            "none of the DICOM images lies on the reference grid, so the labels cannot be mapped onto its frames",
            "Pass the series the reference image was read from (source_images=...)",
        )
    series = {str(ds.SeriesInstanceUID) for ds, _ in kept}
    multi_frame = [ds for ds, _ in kept if "PerFrameFunctionalGroupsSequence" in ds]
    if len(series) > 1 or (multi_frame and len(kept) > 1):
        listing = "; ".join(
            f"{uid} ({sum(str(d.SeriesInstanceUID) == uid for d, _ in kept)} files)" for uid in sorted(series)
        )
        raise ImageInputError(
            where,
            f"several DICOM series lie on the reference grid: {listing}",
            "Pass the files of one series as source_images",
        )
    kept.sort(key=lambda item: int(item[0].get("InstanceNumber") or 0))
    frames = np.stack([labels[ix] for _, indices in kept for ix in indices])
    return [ds for ds, _ in kept], frames


def _source_of(reference: object, path: Path) -> str | PathLike | Sequence[str | PathLike]:
    """The source DICOM files recorded by the reader: ``source_files`` (``SimpleITKReader``), else a DICOM
    folder or ``.dcm`` file named by ``filename_or_obj`` (MONAI's readers)."""
    meta = reference.meta if isinstance(reference, MetaTensor) else {}
    if meta.get("source_format") == "dicom" and meta.get("source_files"):
        return list(meta["source_files"])
    source = meta.get("filename_or_obj")
    if source and (Path(source).is_dir() or str(source).lower().endswith(".dcm")):
        return source
    raise ImageInputError(
        path,
        f"a DICOM SEG must reference its source DICOM series, and the reference image was not read from DICOM "
        f"({source or 'no source file recorded'})",
        "Pass source_images=<the DICOM series folder>, or write .nii.gz or .seg.nrrd instead",
    )


def _coded(code: Code) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=code.value, scheme_designator=code.scheme, meaning=code.meaning)


def write_dicom_seg(
    labels: np.ndarray,
    grid: VoxelGrid,
    segments: Sequence[Segment],
    path: str | PathLike,
    reference: object,
    source_images: str | PathLike | Sequence[str | PathLike] | None = None,
) -> Path:
    """Write ``labels`` (checked, shape ``grid.size``) as ``<path>/segmentation.dcm``, a BINARY DICOM SEG.

    Args:
        labels: ``uint8``/``uint16`` label map on ``grid``, index order ``(i, j, k)``.
        grid: the 3D reference grid (LPS).
        segments: the segments to describe (label value, name, colour).
        path: output directory (created if missing; an existing ``segmentation.dcm`` is replaced atomically).
        reference: the reference image; its meta's ``filename_or_obj`` names the source series by default.
        source_images: the source DICOM folder or files, overriding the reference's meta.

    Returns:
        The written SEG file.
    """
    path = Path(path)
    if grid.ndim != 3:
        raise ImageInputError(path, "DICOM SEG is written for 3D references only", "Write .nii.gz or .seg.nrrd")
    if not segments:
        raise ImageInputError(
            path,
            "the labels are all background, and a DICOM SEG needs at least one segment",
            "Pass label_names for the expected segments to write an empty SEG (a negative finding)",
        )
    source = source_images if source_images is not None else _source_of(reference, path)
    datasets = read_source_series(source)
    sources, frames = source_frames(
        labels, grid, datasets, Path(source if isinstance(source, (str, PathLike)) else source[0])
    )
    lookup = np.zeros(int(labels.max(initial=0)) + 1 if labels.size else 1, dtype=np.uint16)
    for number, segment in enumerate(segments, start=1):
        if segment.value < lookup.size:
            lookup[segment.value] = number
    algorithm = hd.AlgorithmIdentificationSequence(
        name="monai-unet", version=monai_unet.__version__, family=codes.cid7162.ArtificialIntelligence
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=segment.name[:64],
            segmented_property_category=_coded(segment.terminology.category),
            segmented_property_type=_coded(segment.terminology.type),
            anatomic_regions=[_coded(segment.terminology.region)] if segment.terminology.region else None,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            display_color=hd.color.CIELabColor.from_rgb(*(255 * c for c in segment.color)),
        )
        for number, segment in enumerate(segments, start=1)
    ]
    for description, segment in zip(descriptions, segments, strict=True):
        description.SegmentDescription = f"label value {segment.value}"
    number = sources[0].get("SeriesNumber")
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=lookup[frames].astype(np.uint8 if len(segments) <= 255 else np.uint16),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=int(number) + 1000 if number not in (None, "") else 1000,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="monai-unet",
        manufacturer_model_name="monai-unet U-Net",
        software_versions=monai_unet.__version__,
        device_serial_number="1",
        series_description="monai-unet segmentation",
    )
    target = path / SEG_FILE_NAME
    if path.is_dir():
        with atomic_path(target, suffix=".dcm") as temporary:
            seg.save_as(temporary)
    else:
        with atomic_path(path) as temporary:
            temporary.mkdir()
            seg.save_as(temporary / SEG_FILE_NAME)
    return target
