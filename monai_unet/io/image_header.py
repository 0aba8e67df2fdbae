"""What one image file's header says, read without decoding a voxel: its grid and channels, as
:func:`~monai_unet.io.image_file.read_image_file` will read them.

This module makes the decisions that depend on the header alone, for both: which suffixes are read, which pictures
go through Pillow, which NIfTI files through nibabel (floating point, or direction cosines ITK refuses), the
nibabel geometry (orthonormalised, or refused as sheared), the RGBA alpha channel that is dropped, and the fourth
axis that is a channel axis only where allowed. A header read cannot find damaged voxel data (a truncated
``.nii.gz``, a bit flip, NaN voxels): the voxel read does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from monai_unet.io.errors import ImageInputError, last_line
from monai_unet.io.grid import VoxelGrid
from monai_unet.io.integrity import check_nifti_complete, check_nifti_geometry

__all__ = [
    "FILE_SUFFIXES",
    "ImageHeader",
    "channels_in_file",
    "check_fourth_axis",
    "is_colour_palette",
    "read_image_header",
]

#: Suffixes read by :func:`~monai_unet.io.image_file.read_image_file` (lower case).
FILE_SUFFIXES = (
    ".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".bmp"
)  # fmt: skip

#: Suffixes read through Pillow rather than SimpleITK.
PILLOW_SUFFIXES = (".gif", ".bmp")
#: Suffixes of the picture formats that can hold a palette.
_PALETTE_SUFFIXES = (".png", ".gif", ".bmp")
NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass(frozen=True)
class ImageHeader:
    """One file's header as the reader will read the file.

    Args:
        grid: the spatial grid, (x, y[, z]) (LPS, mm; pictures 1 mm pixels at the origin).
        channels: the volumes of a 4D file or the colours of a picture (RGBA read as 3), else 1.
        meta: the reader's meta keys known from the header: ``source_format`` (``"nifti"``, ``"png"``, ...), and
            for a DICOM series its UIDs and files (see :mod:`monai_unet.io.reader`).
        decoder: the library that decodes the voxels: ``"itk"``, ``"nibabel"`` (floating-point NIfTI, or direction
            cosines ITK refuses), ``"pillow"`` (GIF, BMP, pictures ITK cannot read, palette indices) or ``"dicom"``
            (a DICOM series: :mod:`monai_unet.io.dicom`).
    """

    grid: VoxelGrid
    channels: int
    meta: dict
    decoder: str = "itk"
    #: SimpleITK's reading of the header (``decoder`` "itk"), which the voxel read reuses instead of reading it again
    itk_info: sitk.ImageFileReader | None = field(default=None, compare=False, repr=False)


def drops_alpha(path: Path, components: int) -> bool:
    """Whether ITK's reading of ``path`` is an RGBA PNG whose alpha channel is dropped (ITK has no pixel type for
    grey + alpha: those PNGs, GIF and BMP go through Pillow, which drops it)."""
    return components == 4 and path.name.lower().endswith(".png")


def pillow_mode(path: Path, picture) -> str:
    """The mode a Pillow picture is read in, from its header: L, I;16 or RGB. A palette picture gives the colours it
    shows (a grey palette, as GIF masks have, one grey channel); 1-bit and grey + alpha give grey, RGBA its RGB."""
    if picture.mode == "P":
        palette = np.asarray(picture.getpalette() or [0, 0, 0], dtype=np.uint8).reshape(-1, 3)
        return "L" if (palette == palette[:, :1]).all() else "RGB"
    mode = {"1": "L", "LA": "L", "RGBA": "RGB"}.get(picture.mode, picture.mode)
    if mode not in ("L", "I;16", "RGB"):
        raise ImageInputError(path, f"is a {picture.mode} picture", "save it as 8-bit grey, 16-bit grey or RGB")
    return mode


def is_colour_palette(path: str | PathLike) -> bool:
    """Whether ``path`` is a PNG, GIF or BMP picture whose palette holds colours, not only grey levels (from its
    header; False for any other file or one Pillow cannot read)."""
    if not str(path).lower().endswith(_PALETTE_SUFFIXES):
        return False
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:  # the header and palette only: no pixel is decoded
            return picture.mode == "P" and pillow_mode(Path(path), picture) == "RGB"
    except (OSError, UnidentifiedImageError):
        return False


def _nibabel_geometry(path: Path, image: nib.Nifti1Image, orthonormal_tolerance: float) -> VoxelGrid:
    """The grid of a NIfTI read through nibabel: LPS origin, spacing (mm) and direction from its affine, the
    direction replaced by the nearest orthonormal one (polar decomposition; a warning if it moved), on the file's
    first (up to three) axes.

    Raises:
        ImageInputError: the voxel axes are sheared beyond ``orthonormal_tolerance``.
    """
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(image.affine, dtype=np.float64)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    direction = lps[:3, :3] / spacing
    u, _, vt = np.linalg.svd(direction)
    orthonormal = u @ vt
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
    # a 2D file stays 2D, on the first two axes of its affine, as ITK reads the integer (label) files of the same set
    n = min(len(image.shape), 3)
    return VoxelGrid(image.shape[:n], spacing[:n], lps[:n, 3], orthonormal[:n, :n])


def check_fourth_axis(path: Path, shape: tuple[int, ...], allow_4d: bool) -> None:
    """Refuse a 4D file (x, y, z, t) of more than one volume where a 3D volume is expected."""
    if len(shape) == 4 and shape[3] > 1 and not allow_4d:
        raise ImageInputError(
            path,
            f"is a 4D image of shape {tuple(shape)} (x, y, z, t) where a 3D volume is expected",
            "extract one volume first (e.g. fslroi), or read it with allow_4d=True to get the fourth axis as channels",
        )


def _held(shape: tuple[int, ...]) -> int:
    return int(shape[3]) if len(shape) == 4 else 1


def _pillow_header(path: Path, indices: bool) -> ImageHeader:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:  # the header (and palette) only: no pixel is decoded
            mode = "P" if indices and picture.mode == "P" else pillow_mode(path, picture)
            width, height = picture.size
    except (OSError, UnidentifiedImageError) as error:
        raise ImageInputError(path, f"cannot be read ({error})", "the file is corrupt or not a picture") from None
    grid = VoxelGrid((width, height), (1.0, 1.0), (0.0, 0.0), np.eye(2))
    fmt = path.name.lower().rsplit(".", 1)[-1]
    return ImageHeader(grid, 3 if mode == "RGB" else 1, {"source_format": fmt}, "pillow")


def _nibabel_header(path: Path, image: nib.Nifti1Image, allow_4d: bool, orthonormal_tolerance: float) -> ImageHeader:
    shape = tuple(int(n) for n in image.shape)
    check_fourth_axis(path, shape, allow_4d)
    grid = _nibabel_geometry(path, image, orthonormal_tolerance)
    return ImageHeader(grid, _held(shape), {"source_format": "nifti"}, "nibabel")


def read_image_header(
    path: str | PathLike, *, allow_4d: bool = False, orthonormal_tolerance: float = 1e-2, palette_indices: bool = False
) -> ImageHeader:
    """The grid and channels of one image file from its header (no voxel is decoded), with the same routes and
    header checks as :func:`~monai_unet.io.image_file.read_image_file` (arguments as there).

    Raises:
        ImageInputError: a missing file, a header that cannot be read, a NIfTI whose voxel size or affine places no
            voxel, sheared axes, a 4D file where 3D is expected, more than four dimensions.
    """
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise ImageInputError(path, "does not exist or is not a file", "check the path")
    if name.endswith(PILLOW_SUFFIXES) or (palette_indices and is_colour_palette(path)):
        return _pillow_header(path, palette_indices)
    is_nifti = name.endswith(NIFTI_SUFFIXES)
    if is_nifti:
        try:
            image = nib.load(path)  # the header only: the voxels stay on disk
        except Exception as error:  # nibabel raises many types for a damaged header
            raise ImageInputError(
                path, f"is not a readable NIfTI file ({error})", "re-export or re-download it"
            ) from None
        check_nifti_geometry(path, image.header)
        if image.header.get_data_dtype().kind in "fc":
            return _nibabel_header(path, image, allow_4d, orthonormal_tolerance)
    info = sitk.ImageFileReader()
    info.SetFileName(str(path))
    try:
        info.ReadImageInformation()
    except RuntimeError as error:
        message = str(error)
        if is_nifti and "orthonormal" in message:
            return _nibabel_header(path, image, allow_4d, orthonormal_tolerance)
        if name.endswith(".png"):  # e.g. grey + alpha, which ITK has no pixel type for
            return _pillow_header(path, palette_indices)
        if is_nifti:  # ITK refuses the header of some damaged .nii.gz files: name the damage as the voxel read does
            check_nifti_complete(path)
        raise ImageInputError(
            path, f"cannot be read ({last_line(message)})", "the file is corrupt or not in a supported format"
        ) from None
    ndim = info.GetDimension()
    if ndim not in (2, 3, 4):
        raise ImageInputError(path, f"has {ndim} dimensions", "only 2D, 3D and (with allow_4d) 4D images are read")
    shape = tuple(int(n) for n in info.GetSize())
    check_fourth_axis(path, shape, allow_4d)
    components = int(info.GetNumberOfComponents())
    channels = _held(shape) if ndim == 4 else (3 if drops_alpha(path, components) else components)
    fmt = "nifti" if is_nifti else name.rsplit(".", 1)[-1]
    return ImageHeader(VoxelGrid.from_sitk(info).first_axes(3), channels, {"source_format": fmt}, itk_info=info)


def channels_in_file(path: str | PathLike) -> int:
    """Channels one file holds, from its header alone (no voxel is decoded): N for a 4D file (x, y, z, N), the
    components of a colour picture (3 for RGB), else 1; 1 also for a DICOM folder and for a header that cannot be
    read (the reader refuses the file later, naming the problem)."""
    path = Path(path)
    if not path.is_file() or not path.name.lower().endswith(FILE_SUFFIXES):
        return 1
    with warnings.catch_warnings():  # the reader warns when it reads the file
        warnings.simplefilter("ignore")
        try:
            return read_image_header(path, allow_4d=True).channels
        except ImageInputError:
            return 1
