"""Reading one image file (NIfTI, NRRD, MetaImage, PNG, JPEG, TIFF; GIF and BMP through Pillow) with its geometry.

SimpleITK decompresses ``.nii.gz`` with its own zlib and returns the voxels in their stored type, which is why
it is several times faster than nibabel's Python gzip followed by a float conversion. Two things SimpleITK gets
wrong are handled here:

- A truncated ``.nii.gz`` is read without any error (the missing voxels come back as zeros), and a damaged one
  without a CRC check (a bit flip reads as wrong voxels). Every ``.nii.gz`` is therefore inflated first, with
  each gzip member's CRC-32 and length checked (several members, ``cat a.gz b.gz``, are valid gzip and accepted),
  after the size the NIfTI header declares has been bounded by what the compressed file can hold (a forged size
  field would otherwise make a tiny file allocate gigabytes); a ``.nii`` must hold the bytes its header promises
  (:mod:`monai_unet.io.integrity`, which also bounds NRRD and MetaImage sizes).
- ITK's NIfTI library silently replaces NaN and infinite voxels by 0, which would hide them from the reader's
  finite check; floating-point NIfTI files are therefore read through nibabel (integer ones, CT included, are not).
- NIfTI files whose direction cosines are slightly non-orthonormal (rounding in the writer) are refused by ITK
  ("ITK only supports orthonormal direction cosines"). They are read through nibabel instead and the direction
  is replaced by the nearest orthonormal matrix (polar decomposition), with a warning saying how far it moved.

Speed: the inflation uses libdeflate (the ``deflate`` package; zlib where it is missing or for several members),
which is faster than ITK's zlib. An integer 3D ``.nii.gz`` then takes its voxels from those bytes, and only the
header is read through SimpleITK (``ReadImageInformation``, a few ms), so the geometry is exactly SimpleITK's. This
path is taken only when ITK itself would return the stored voxels unchanged (same pixel type and size as the header,
one component, little endian, no ``scl_slope``/``scl_inter`` rescaling); every other file, or any doubt, goes
through ``sitk.ReadImage`` (or nibabel), after the same verification.
GIF and BMP pictures (retinal vessel sets such as DRIVE ship their masks as GIF) are read through Pillow, which
SimpleITK lacks for GIF and which keeps a grey BMP one channel (ITK expands it to three); so is a PNG that ITK cannot
read (grey + alpha). A palette picture reads as the grey levels (or colours) it shows, not its palette indices, unless
``palette_indices`` is asked for (label maps: a colour palette picture, as PASCAL VOC ships its masks, stores each
pixel's class as its palette index and uses the colours only to display it).
The alpha channel of a PNG, GIF or BMP picture (transparency, not image content) is dropped, so that RGBA and RGB
pictures of one set read alike as 3 channels.
Pictures carry no geometry: 1 mm pixels at origin 0.
Voxels are then reordered into (x, y, z) and converted to the requested type in one pass (see
:func:`~monai_unet.io.axes.reversed_axes_contiguous`), or returned as a transposed view (``contiguous=False``).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from numpy.typing import DTypeLike

from monai_unet.io.axes import reversed_axes_contiguous, reversed_axes_view
from monai_unet.io.errors import ImageInputError, last_line
from monai_unet.io.grid import VoxelGrid
from monai_unet.io.image_header import (
    FILE_SUFFIXES,
    channels_in_file,
    check_fourth_axis,
    drops_alpha,
    is_colour_palette,
    pillow_mode,
    read_image_header,
)
from monai_unet.io.integrity import InflatedVoxels, check_declared_size, check_nifti_complete
from monai_unet.io.volume import Volume

__all__ = ["FILE_SUFFIXES", "channels_in_file", "is_colour_palette", "read_image_file"]

_ITK_INTEGER_TYPES = {
    sitk.sitkUInt8: np.dtype(np.uint8),
    sitk.sitkInt8: np.dtype(np.int8),
    sitk.sitkUInt16: np.dtype(np.uint16),
    sitk.sitkInt16: np.dtype(np.int16),
    sitk.sitkUInt32: np.dtype(np.uint32),
    sitk.sitkInt32: np.dtype(np.int32),
    sitk.sitkUInt64: np.dtype(np.uint64),
    sitk.sitkInt64: np.dtype(np.int64),
}


def _arrange(buffer: np.ndarray, spatial_dims: int, dtype: DTypeLike, contiguous: bool) -> np.ndarray:
    """ITK-ordered voxels ([t,] z, y, x[, c]) → (x, y[, z][, t])[, c] in ``dtype``, C-contiguous or as a view."""
    if contiguous:
        return reversed_axes_contiguous(buffer, spatial_dims, dtype)
    return reversed_axes_view(buffer, spatial_dims, dtype)


def _read_nifti_with_nibabel(
    path: Path, grid: VoxelGrid, allow_4d: bool, dtype: DTypeLike, contiguous: bool, raw: bytes | None
) -> Volume:
    """The voxels of a floating-point NIfTI, or of one whose direction cosines ITK refuses, through nibabel (from
    ``raw``, the verified uncompressed bytes of a ``.nii.gz``, where given), on ``grid`` (the header read's,
    :func:`~monai_unet.io.image_header.read_image_header`)."""
    image = nib.load(path, mmap=False)
    if raw is not None:  # the file's bytes, already inflated and checked: no second inflation
        image = type(image).from_bytes(raw)
    stored = np.asanyarray(image.dataobj)
    # nibabel's voxels are (x, y[, z][, t]) in Fortran order, i.e. their transpose is ITK's C-ordered buffer
    array = _arrange(np.asfortranarray(stored).T, stored.ndim, dtype, contiguous)
    volume = Volume(array, grid, {"source_format": "nifti", "source_dtype": stored.dtype.name})
    return _drop_or_keep_fourth_axis(path, volume, allow_4d)


def read_image_file(
    path: str | PathLike,
    *,
    allow_4d: bool = False,
    orthonormal_tolerance: float = 1e-2,
    dtype: DTypeLike = None,
    contiguous: bool = True,
    palette_indices: bool = False,
) -> Volume:
    """Read one image file with its geometry.

    Args:
        path: a NIfTI (``.nii``, ``.nii.gz``), NRRD, MetaImage (``.mha``/``.mhd``), PNG or TIFF file.
        allow_4d: accept a 4D file (x, y, z, t) and return its fourth axis as a trailing channel axis. When
            False (default) a 4D file with more than one volume raises, because a 3D pipeline would otherwise
            treat time points or diffusion directions as a spatial axis. A fourth axis of length 1 is dropped.
        orthonormal_tolerance: largest deviation of a NIfTI's direction cosines from the nearest orthonormal
            matrix that is accepted (with a warning); above it the file is refused as sheared.
        dtype: type of the returned voxels (e.g. ``np.float32``); None keeps the stored type. Converting here costs
            nothing extra: it happens in the pass that reorders the voxels.
        contiguous: return C-contiguous voxels (what MONAI's ``LoadImage`` needs); False returns a transposed
            view of the file's voxel order (Fortran order), saving the reordering copy.
        palette_indices: read a picture with a colour palette (:func:`is_colour_palette`) as its palette indices,
            one channel (a label map whose index is the class), not as the colours it shows.

    Returns:
        The voxels indexed (x, y[, z])[, channel], their LPS geometry, and meta with ``source_format`` and
        ``source_dtype`` (the stored type, e.g. ``"int16"``).

    Raises:
        ImageInputError: missing, truncated or unreadable file, or a 4D file where 3D is expected.
    """
    path = Path(path)
    header = read_image_header(
        path, allow_4d=allow_4d, orthonormal_tolerance=orthonormal_tolerance, palette_indices=palette_indices
    )
    if header.decoder == "pillow":
        return _read_with_pillow(path, dtype, contiguous, indices=palette_indices and is_colour_palette(path))
    is_nifti = header.meta["source_format"] == "nifti"
    if is_nifti:
        nifti, offset, raw = check_nifti_complete(path)
        if header.decoder == "nibabel":
            return _read_nifti_with_nibabel(path, header.grid, allow_4d, dtype, contiguous, raw)
        inflated = (
            None if raw is None else _volume_from_inflated(header.itk_info, nifti, offset, raw, dtype, contiguous)
        )
        if inflated is not None:
            return inflated
    else:
        verified = check_declared_size(path, header.itk_info)
        volume = None if verified is None else _volume_from_verified(verified, dtype, contiguous)
        if volume is not None:
            return volume
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise ImageInputError(
            path, f"cannot be read ({last_line(str(error))})", "the file is corrupt or not in a supported format"
        ) from None
    ndim = image.GetDimension()  # 2, 3 or 4: the header read refuses others
    buffer = sitk.GetArrayViewFromImage(image)  # read-only, valid while ``image`` lives: copied by _arrange
    if ndim == 2 and drops_alpha(path, image.GetNumberOfComponentsPerPixel()):
        buffer = buffer[..., :3]
    array = _arrange(buffer, ndim, dtype, contiguous)
    meta = {**header.meta, "source_dtype": buffer.dtype.name}
    volume = Volume(array, VoxelGrid.from_sitk(image).first_axes(3), meta)  # a 4D image's fourth axis is not spatial
    return _drop_or_keep_fourth_axis(path, volume, allow_4d) if ndim == 4 else volume


def _pillow_picture(path: Path, indices: bool = False):
    """The first frame of a GIF, BMP or PNG as a Pillow image in the mode
    :func:`~monai_unet.io.image_header.pillow_mode` gives (with ``indices``, a palette picture keeps its palette
    indices)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            picture.load()
    except (OSError, UnidentifiedImageError) as error:
        raise ImageInputError(path, f"cannot be read ({error})", "the file is corrupt or not a picture") from None
    mode = "P" if indices and picture.mode == "P" else pillow_mode(path, picture)
    return picture if picture.mode == mode else picture.convert(mode)


def _read_with_pillow(path: Path, dtype: DTypeLike, contiguous: bool, indices: bool = False) -> Volume:
    """A picture read through Pillow: (rows, columns[, colours]) as (x, y)[, channel], 1 mm pixels at the origin
    (``indices``: a palette picture's palette indices)."""
    buffer = np.asarray(_pillow_picture(path, indices))
    array = _arrange(buffer, 2, dtype, contiguous)
    grid = VoxelGrid(array.shape[:2], (1.0, 1.0), (0.0, 0.0), np.eye(2))
    fmt = path.name.lower().rsplit(".", 1)[-1]
    return Volume(array, grid, {"source_format": fmt, "source_dtype": buffer.dtype.name})


def _volume_from_inflated(
    info: sitk.ImageFileReader,
    header: nib.Nifti1Header,
    offset: int,
    raw: bytes,
    dtype: DTypeLike,
    contiguous: bool,
) -> Volume | None:
    """An integer 3D ``.nii.gz`` from its verified uncompressed bytes and SimpleITK's header geometry (``info``, the
    header read's); None where not applicable.

    None (read it with ``sitk.ReadImage`` instead) unless ITK would return exactly the stored voxels: NIfTI-1, 3D,
    little-endian integers with no intensity rescaling, and ITK's own reading of the header agrees on the pixel type,
    the size and a single component.
    """
    stored = header.get_data_dtype()
    shape = tuple(int(n) for n in header.get_data_shape())
    if (
        not isinstance(header, nib.Nifti1Header)
        or isinstance(header, nib.Nifti2Header)
        or len(shape) != 3
        or stored.kind not in "iu"
        or stored.byteorder == ">"
        or header.get_slope_inter() not in ((None, None), (1.0, 0.0))
    ):
        return None
    if (
        info.GetDimension() != 3
        or tuple(info.GetSize()) != shape
        or info.GetNumberOfComponents() != 1
        or _ITK_INTEGER_TYPES.get(info.GetPixelID()) != stored.newbyteorder("=")
    ):
        return None  # ITK would convert or reshape the stored voxels (e.g. rescale to float): let it
    count = int(np.prod(shape))
    buffer = np.frombuffer(raw, dtype=stored.newbyteorder("="), count=count, offset=offset).reshape(shape[::-1])
    array = _arrange(buffer, 3, dtype, contiguous)
    return Volume(array, VoxelGrid.from_sitk(info), {"source_format": "nifti", "source_dtype": stored.name})


#: ITK pixel types whose NRRD voxels are the stored bytes as they are (scalars only).
_ITK_STORED_TYPES = {
    **_ITK_INTEGER_TYPES,
    sitk.sitkFloat32: np.dtype(np.float32),
    sitk.sitkFloat64: np.dtype(np.float64),
}


def _volume_from_verified(voxels: InflatedVoxels, dtype: DTypeLike, contiguous: bool) -> Volume | None:
    """A 2D or 3D scalar NRRD or MetaImage from the voxel bytes :func:`check_declared_size` inflated and verified,
    with SimpleITK's reading of its header; None (read it with ``sitk.ReadImage``) where ITK would do more than take
    the bytes as they are: several components, byte, line or header skips, another number of dimensions."""
    info = voxels.info
    stored = _ITK_STORED_TYPES.get(info.GetPixelID())
    ndim = info.GetDimension()
    if stored is None or ndim not in (2, 3) or info.GetNumberOfComponents() != 1 or not voxels.plain:
        return None
    shape = tuple(int(n) for n in reversed(info.GetSize()))
    order = ">" if voxels.big_endian else "<"
    buffer = np.frombuffer(voxels.raw, dtype=stored.newbyteorder(order), count=int(np.prod(shape))).reshape(shape)
    if buffer.dtype != stored:  # big-endian voxels: to this machine's order once
        buffer = buffer.astype(stored)
    array = _arrange(buffer, ndim, dtype or stored, contiguous)
    return Volume(
        array, VoxelGrid.from_sitk(info), {"source_format": voxels.source_format, "source_dtype": stored.name}
    )


def _drop_or_keep_fourth_axis(path: Path, volume: Volume, allow_4d: bool) -> Volume:
    check_fourth_axis(path, volume.array.shape, allow_4d)
    if volume.array.ndim == 4 and volume.array.shape[3] == 1:
        volume.array = volume.array[..., 0]
    return volume
