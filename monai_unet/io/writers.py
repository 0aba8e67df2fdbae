"""Writing a prediction on the grid of its reference image: label maps and probabilities, in every output format.

The format follows the path, through the one table in :mod:`monai_unet.io.formats`:

============================  ===============================================================================
``*.nii.gz``, ``*.nii``        NIfTI-1 label map, ``uint8`` (labels ≤ 255) or ``uint16`` (≤ 65535), never float;
                               qform and sform both set (code 1, scanner) from the reference geometry.
                               Probabilities: float32, one volume per foreground class ``(x, y, z[, class])``.
``*.seg.nrrd``                 3D Slicer segmentation: one 3D layer (labels never overlap), LPS space, one
                               ``Segment{N}_*`` block per label (:mod:`monai_unet.io.seg_nrrd`).
a directory (no suffix)        DICOM Segmentation Storage, ``BINARY``, written as ``<directory>/segmentation.dcm``
                               and referencing the source series (:mod:`monai_unet.io.dicom.seg`; extra ``dicom``).
``*.png`` / ``*.tif``          one 2D slice without geometry: class indices as 8-bit PNG, probabilities as
                               float32 TIFF (:mod:`monai_unet.io.planar`).
============================  ===============================================================================

Every write is atomic: the file is written under a temporary name in the target folder and renamed over the target
(``os.replace``) only when complete, so an error leaves neither a partial file nor a changed target. Inputs are never
modified.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk
import torch
from monai.data import MetaTensor

from monai_unet.io.atomic import atomic_path
from monai_unet.io.errors import ImageInputError, OutputWriteError, last_line
from monai_unet.io.formats import OUTPUT_FORMATS, OutputFormat, find_format
from monai_unet.io.grid import VoxelGrid
from monai_unet.io.integrity import check_nifti_complete
from monai_unet.io.segments import MAX_LABEL, segment_table

__all__ = [
    "label_array",
    "output_format",
    "write_probabilities",
    "write_segmentation",
]


def output_format(path: str | PathLike, probabilities: bool = False) -> OutputFormat:
    """The format of the output ``path`` (:mod:`monai_unet.io.formats`), checked to hold labels (or probabilities).

    Raises:
        ImageInputError: a suffix that names no output format (``.nrrd``, ``.mha``, ``.dcm``, ...), or a format that
            cannot hold what is written (probabilities in a ``.seg.nrrd``, labels in a ``.tif``).
    """
    found = find_format(path)
    what = "probabilities" if probabilities else "a label map"
    usable = [f for f in OUTPUT_FORMATS if f.holds(probabilities)]
    if found is None or found not in usable:
        named = "a folder (DICOM SEG)" if found is not None and found.folder else f"the suffix {Path(path).suffix!r}"
        raise ImageInputError(
            path,
            f"{named} is not a format for {what}",
            "Use " + ", ".join(f.description + (f" ({f.suffixes[0]})" if f.suffixes else "") for f in usable),
        )
    return found


def label_array(labels: np.ndarray | torch.Tensor, grid: VoxelGrid, path: str | PathLike) -> np.ndarray:
    """Check a label map against its grid and return it as ``uint8`` (max ≤ 255) or ``uint16`` (max ≤ 65535).

    Args:
        labels: integer label map of spatial shape ``grid.size`` (index order ``(i, j[, k])``, as MONAI keeps it),
            optionally with one leading channel axis of size 1. Boolean and floating-point arrays are accepted when
            every value is a whole number (MONAI's ``Invertd``/``AsDiscrete`` return float tensors).
        grid: the reference grid.
        path: the file being written, named in errors.

    Raises:
        ImageInputError: wrong shape, several channels, NaN/inf, fractional values (probabilities), negative
            labels, or labels above 65535.
    """
    array = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if array.ndim == grid.ndim + 1:
        if array.shape[0] != 1:
            raise ImageInputError(
                path,
                f"labels have {array.shape[0]} channels (shape {tuple(array.shape)}); one integer label map is needed",
                "Take the argmax over channels first, e.g. monai.transforms.AsDiscrete(argmax=True)",
            )
        array = array[0]
    if tuple(array.shape) != grid.size:
        raise ImageInputError(
            path,
            f"labels of spatial shape {tuple(array.shape)} do not match the reference image of shape {grid.size}",
            "Invert the preprocessing (monai.transforms.Invertd) so the labels are back on the reference grid",
        )
    if array.dtype == bool:
        return array.astype(np.uint8)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ImageInputError(path, f"labels of dtype {array.dtype} are not numbers")
    low, high = (array.min().item(), array.max().item()) if array.size else (0, 0)
    if not (np.isfinite(low) and np.isfinite(high)):  # min and max are NaN/inf exactly when a voxel is
        bad = int((~np.isfinite(array)).sum())
        raise ImageInputError(path, f"labels contain {bad} NaN or infinite voxels", "Fix the prediction")
    if low < 0 or high > MAX_LABEL:
        raise ImageInputError(path, f"label values span [{low:g}, {high:g}]; they must lie in [0, {MAX_LABEL}]")
    out = array.astype(np.uint8 if high <= 255 else np.uint16, copy=False)
    if np.issubdtype(array.dtype, np.floating) and not np.array_equal(out, array):
        raise ImageInputError(
            path,
            "labels contain fractional values (probabilities or logits?); a label map holds whole numbers",
            "Threshold or take the argmax first (monai.transforms.AsDiscrete)",
        )
    return out


def write_segmentation(
    labels: np.ndarray | torch.Tensor,
    reference: MetaTensor | sitk.Image | None,
    path: str | PathLike,
    label_names: Mapping[int | str, str] | None = None,
    colors: Mapping[int | str, Sequence[float]] | None = None,
    source_images: str | PathLike | Sequence[str | PathLike] | None = None,
    terminology: Mapping[int | str, Mapping] | None = None,
) -> Path:
    """Write an integer label map so that it lies exactly on ``reference``; the format follows ``path``.

    Args:
        labels: label map of the reference's spatial shape, index order ``(i, j[, k])`` (MONAI's), optionally with
            a leading channel axis of size 1; whole numbers in [0, 65535] (bool, int or whole-valued float).
            A ``MetaTensor`` whose affine differs from the reference's by more than 1e-3 mm is refused.
        reference: the image the labels were predicted for: a ``MetaTensor`` (affine in RAS, e.g. from
            ``SimpleITKReader`` or after ``Invertd``) or a ``SimpleITK.Image``; ``None`` takes the geometry of
            ``labels`` (then a ``MetaTensor``).
        path: ``*.nii.gz``/``*.nii``, ``*.seg.nrrd``, ``*.png`` (2D), or a directory for DICOM SEG (see the
            module docstring).
        label_names: label value → segment name (.seg.nrrd, DICOM SEG). Default ``"Segment_<value>"``.
        colors: label value → RGB in [0, 1] (.seg.nrrd, DICOM SEG). Default
            :data:`~monai_unet.io.segments.DEFAULT_PALETTE`.
        source_images: DICOM SEG only: the source series (folder or files) the SEG references; default the
            files recorded in the reference's meta by ``SimpleITKReader``. A reference that was not read from
            DICOM is refused for DICOM SEG (a SEG without its source series cannot be placed in a PACS).
        terminology: label value → SNOMED CT category, type and region (.seg.nrrd, DICOM SEG), the table format of
            :mod:`monai_unet.io.terminology`. Default: Slicer's generic "Tissue".

    Returns:
        The written file (for DICOM SEG, ``<path>/segmentation.dcm``).

    Raises:
        ImageInputError: unknown suffix, bad labels (see :func:`label_array`), labels and reference on different
            grids, or (DICOM SEG) no usable source series.
    """
    path = Path(path)
    kind = output_format(path)
    grid, reference = _reference_grid(labels, reference, path, "labels")
    array = label_array(labels, grid, path)
    if kind.key in (".nii.gz", ".nii"):
        # SimpleITK may ignore a short write (a full disk): the file is read back completely before the rename.
        with atomic_path(path, suffix=kind.key, verify=check_nifti_complete) as temporary:
            try:
                sitk.WriteImage(grid.sitk_image(array), str(temporary), useCompression=True)
            except RuntimeError as error:  # ITK's write errors carry no errno; the label map itself is valid
                raise OutputWriteError(path, f"SimpleITK could not write it ({last_line(str(error))})") from None
        return path
    if kind.planar:
        from monai_unet.io.planar import write_planar

        if array.max(initial=0) > 255:
            raise ImageInputError(path, f"label {int(array.max())} does not fit an 8-bit PNG", "Write .nii.gz instead")
        write_planar(array[None].astype(np.uint8), grid, path)
        return path
    segments = segment_table(array, label_names, colors, terminology)
    if kind.key == ".seg.nrrd":
        from monai_unet.io.seg_nrrd import write_seg_nrrd

        with atomic_path(path) as temporary:
            write_seg_nrrd(array, grid, segments, temporary)
        return path
    from monai_unet.io.dicom.seg import write_dicom_seg

    return write_dicom_seg(array, grid, segments, path, reference, source_images)


def write_probabilities(
    probabilities: np.ndarray | torch.Tensor, reference: MetaTensor | sitk.Image | None, path: str | PathLike
) -> Path:
    """Write class probabilities (or any float maps) so that they lie exactly on ``reference``.

    Args:
        probabilities: ``(C, *spatial)`` finite floats, index order ``(i, j[, k])``, usually the foreground classes
            (``C`` = classes - 1; the background is one minus their sum).
        reference: as for :func:`write_segmentation` (``None``: the geometry of ``probabilities``, a ``MetaTensor``).
        path: ``*.nii.gz``/``*.nii`` (float32 ``(x, y, z)`` for one class, ``(x, y, z, C)`` for several, as MONAI's
            ``SaveImage`` lays channels out; a 2D grid gains one slice) or ``*.tif`` (2D only: float32, one sample
            per class).

    Returns:
        ``path``.

    Raises:
        ImageInputError: a format that holds no probabilities, a shape off the reference grid, NaN or infinity.
    """
    path = Path(path)
    kind = output_format(path, probabilities=True)
    grid, _ = _reference_grid(probabilities, reference, path, "probabilities")
    array = (
        probabilities.detach().cpu().numpy() if isinstance(probabilities, torch.Tensor) else np.asarray(probabilities)
    )
    if array.ndim != grid.ndim + 1 or tuple(array.shape[1:]) != grid.size:
        raise ImageInputError(
            path,
            f"probabilities of shape {tuple(array.shape)} are not (classes, *{grid.size}) on the reference grid",
            "Invert the preprocessing (monai.transforms.Invertd) so they are back on the reference grid",
        )
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise ImageInputError(path, "probabilities contain NaN or infinite values", "Check the network's output")
    if kind.planar:
        from monai_unet.io.planar import write_planar

        write_planar(array, grid, path)
        return path
    volume = grid.to_3d()
    channels_last = np.moveaxis(array.reshape(array.shape[0], *volume.size), 0, -1)
    image = nib.Nifti1Image(channels_last[..., 0] if array.shape[0] == 1 else channels_last, volume.ras_affine())
    image.set_qform(volume.ras_affine(), code=1)
    image.set_sform(volume.ras_affine(), code=1)
    with atomic_path(path, suffix=kind.key, verify=check_nifti_complete) as temporary:
        nib.save(image, temporary)
    return path


def _reference_grid(
    values: np.ndarray | torch.Tensor, reference: MetaTensor | sitk.Image | None, path: Path, what: str
) -> tuple[VoxelGrid, MetaTensor | sitk.Image]:
    """The reference's grid (``reference=None``: the one ``values`` carries), after checking that a ``MetaTensor``
    ``values`` lies on it; returns the grid and the reference.

    Raises:
        ImageInputError: ``values`` carries an affine more than 1e-3 mm off the reference's.
    """
    if reference is None:
        if not isinstance(values, MetaTensor):
            raise TypeError(f"reference=None needs the {what} as a MetaTensor that carries its own affine")
        reference = values
    grid = VoxelGrid.from_reference(reference)
    if isinstance(values, MetaTensor) and values is not reference:
        own = VoxelGrid.from_affine(values.affine, values.shape[-grid.ndim :])
        if own.size != grid.size:
            raise ImageInputError(
                path,
                f"{what} of spatial shape {own.size} do not match the reference image of shape {grid.size}",
                "Invert the preprocessing (monai.transforms.Invertd) so they are back on the reference grid",
            )
        if not own.same_as(grid):
            raise ImageInputError(
                path,
                f"the {what}' affine {own.ras_affine().round(4).tolist()} differs from the reference's "
                f"{grid.ras_affine().round(4).tolist()} (tolerance 1e-3 mm)",
                "Invert the preprocessing (monai.transforms.Invertd) before writing",
            )
    return grid, reference
