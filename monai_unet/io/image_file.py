"""Reading one image file (NIfTI, NRRD, MetaImage, PNG, TIFF) through SimpleITK, with its geometry.

SimpleITK decompresses ``.nii.gz`` with its own zlib and returns the voxels in their stored type, which is why
it is several times faster than nibabel's Python gzip followed by a float conversion. Two things SimpleITK gets
wrong are handled here:

- A truncated ``.nii.gz`` is read without any error (the missing voxels come back as zeros). The gzip trailer
  stores the uncompressed size, so it is compared with the size the NIfTI header promises before reading.
- ITK's NIfTI library silently replaces NaN and infinite voxels by 0, which would hide them from the reader's
  finite check; floating-point NIfTI files are therefore read through nibabel (integer ones, CT included, are not).
- NIfTI files whose direction cosines are slightly non-orthonormal (rounding in the writer) are refused by ITK
  ("ITK only supports orthonormal direction cosines"). They are read through nibabel instead and the direction
  is replaced by the nearest orthonormal matrix (polar decomposition), with a warning saying how far it moved.
"""

from __future__ import annotations

import struct
import warnings
from os import PathLike
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from monai_unet.io.errors import ImageInputError
from monai_unet.io.volume import Volume, reversed_axes_contiguous

__all__ = ["FILE_SUFFIXES", "read_image_file"]

#: Suffixes read by :func:`read_image_file` (lower case).
FILE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".png", ".tif", ".tiff")

_NIFTI_SUFFIXES = (".nii", ".nii.gz")


def _voxels(image: sitk.Image) -> np.ndarray:
    """The voxels of ``image`` indexed (x, y[, z])[, component], C-contiguous (ITK's buffer is z, y, x)."""
    return reversed_axes_contiguous(sitk.GetArrayViewFromImage(image), image.GetDimension())


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[-1] if lines else message


def _check_nifti_complete(path: Path) -> nib.Nifti1Header:
    """Raise when a NIfTI file holds fewer bytes than its header promises (a truncated copy or download)."""
    try:
        header = nib.load(path).header
    except Exception as error:  # nibabel raises many types for a damaged header
        raise ImageInputError(path, f"is not a readable NIfTI file ({error})", "re-export or re-download it") from None
    offset = int(header.get("vox_offset", 0)) or header.single_vox_offset
    expected = offset + int(np.prod(header.get_data_shape())) * header.get_data_dtype().itemsize
    if path.name.lower().endswith(".gz"):
        with open(path, "rb") as f:
            f.seek(-4, 2)
            actual = struct.unpack("<I", f.read(4))[0]  # gzip ISIZE: uncompressed size modulo 2**32
        complete = actual == expected % 2**32
    else:
        actual = path.stat().st_size
        complete = actual >= expected
    if not complete:
        raise ImageInputError(
            path,
            f"is truncated or corrupt: its header promises {expected} bytes of data, the file holds "
            f"{'a gzip stream of ' if path.name.lower().endswith('.gz') else ''}{actual} bytes",
            "copy or download the file again",
        )
    return header


def _nearest_orthonormal(matrix: np.ndarray) -> np.ndarray:
    """The orthonormal matrix closest to ``matrix`` in the Frobenius norm (polar decomposition via SVD)."""
    u, _, vt = np.linalg.svd(matrix)
    return u @ vt


def _read_nifti_with_nibabel(path: Path, allow_4d: bool, orthonormal_tolerance: float) -> Volume:
    """Read a floating-point NIfTI, or one whose direction cosines ITK refuses, through nibabel."""
    array, volume = _nibabel_voxels_and_geometry(path, orthonormal_tolerance)
    volume.meta["source_format"] = "nifti"
    if array.ndim == 2:
        array = array[..., None]
    return _drop_or_keep_fourth_axis(path, array, volume, allow_4d)


def _nibabel_voxels_and_geometry(path: Path, orthonormal_tolerance: float) -> tuple[np.ndarray, Volume]:
    """Voxels (x, y, z[, t]) and 3D LPS geometry from nibabel; direction orthonormalised (warning if needed)."""
    image = nib.load(path, mmap=False)
    ras = np.asarray(image.affine, dtype=np.float64)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ras
    scaled = lps[:3, :3]
    spacing = np.linalg.norm(scaled, axis=0)
    direction = scaled / spacing
    orthonormal = _nearest_orthonormal(direction)
    deviation = float(np.abs(direction - orthonormal).max())
    if deviation > orthonormal_tolerance:
        raise ImageInputError(
            path,
            f"its voxel axes are sheared (direction cosines {deviation:.3g} from orthonormal, more than the "
            f"tolerance {orthonormal_tolerance:g})",
            "resample it onto an orthogonal grid first, or raise orthonormal_tolerance if the shear is harmless",
        )
    if deviation > 1e-6:
        warnings.warn(
            f"{path}: direction cosines are not orthonormal (off by up to {deviation:.2g}); read with nibabel and "
            "replaced by the nearest orthonormal directions",
            stacklevel=4,
        )
    return np.asanyarray(image.dataobj), Volume(np.empty(0), lps[:3, 3].copy(), spacing, orthonormal, {})


def read_image_file(path: str | PathLike, *, allow_4d: bool = False, orthonormal_tolerance: float = 1e-2) -> Volume:
    """Read one image file with its geometry.

    Args:
        path: a NIfTI (``.nii``, ``.nii.gz``), NRRD, MetaImage (``.mha``/``.mhd``), PNG or TIFF file.
        allow_4d: accept a 4D file (x, y, z, t) and return its fourth axis as a trailing channel axis. When
            False (default) a 4D file with more than one volume raises, because a 3D pipeline would otherwise
            treat time points or diffusion directions as a spatial axis. A fourth axis of length 1 is dropped.
        orthonormal_tolerance: largest deviation of a NIfTI's direction cosines from the nearest orthonormal
            matrix that is accepted (with a warning); above it the file is refused as sheared.

    Returns:
        The voxels in their stored type, indexed (x, y[, z])[, channel], and their LPS geometry.

    Raises:
        ImageInputError: missing, truncated or unreadable file, or a 4D file where 3D is expected.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageInputError(path, "does not exist or is not a file", "check the path")
    is_nifti = path.name.lower().endswith(_NIFTI_SUFFIXES)
    if is_nifti and _check_nifti_complete(path).get_data_dtype().kind in "fc":
        return _read_nifti_with_nibabel(path, allow_4d, orthonormal_tolerance)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        message = str(error)
        if is_nifti and "orthonormal" in message:
            return _read_nifti_with_nibabel(path, allow_4d, orthonormal_tolerance)
        raise ImageInputError(
            path, f"cannot be read ({_first_line(message)})", "the file is corrupt or not in a supported format"
        ) from None
    ndim = image.GetDimension()
    array = _voxels(image)
    origin = np.asarray(image.GetOrigin(), dtype=np.float64)
    spacing = np.asarray(image.GetSpacing(), dtype=np.float64)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(ndim, ndim)
    fmt = "nifti" if is_nifti else path.name.lower().rsplit(".", 1)[-1]
    volume = Volume(array, origin[:3], spacing[:3], direction[:3, :3], {"source_format": fmt})
    if ndim == 4:
        return _drop_or_keep_fourth_axis(path, array, volume, allow_4d)
    if ndim not in (2, 3):
        raise ImageInputError(path, f"has {ndim} dimensions", "only 2D, 3D and (with allow_4d) 4D images are read")
    volume.origin, volume.spacing, volume.direction = origin, spacing, direction
    return volume


def _drop_or_keep_fourth_axis(path: Path, array: np.ndarray, volume: Volume, allow_4d: bool) -> Volume:
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    elif array.ndim == 4 and not allow_4d:
        raise ImageInputError(
            path,
            f"is a 4D image of shape {tuple(array.shape)} (x, y, z, t) where a 3D volume is expected",
            "extract one volume first (e.g. fslroi), or read it with allow_4d=True to get the fourth axis as channels",
        )
    volume.array = array
    return volume
