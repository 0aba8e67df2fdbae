"""``SimpleITKReader``: a MONAI ``ImageReader`` for files and DICOM series that keeps their geometry.

Use it wherever MONAI takes a reader: ``LoadImage(reader=SimpleITKReader())``, ``LoadImaged(keys, reader=...)``
or a bundle config (``"reader": {"_target_": "monai_unet.io.SimpleITKReader"}``). What it reads:

- one file: NIfTI (``.nii``/``.nii.gz``), NRRD, MetaImage, 2D PNG/TIFF (see :mod:`monai_unet.io.image_file`);
- a folder, a single DICOM file or a list of DICOM files: one DICOM series (see :mod:`monai_unet.io.dicom`);
- a list of files or folders that are not all DICOM files: one image per entry, stacked as channels (e.g. FLAIR
  and T1c of one subject); they must share shape and affine, else the error names both files.

Voxels come back C-contiguous in (x, y, z) order: ITK's buffer is (z, y, x) and MONAI's ``LoadImage`` would copy a
transposed view anyway, so the one copy is made here, block by block, 3.5× faster than numpy's copy of a transposed
view (:func:`~monai_unet.io.axes.reversed_axes_contiguous`). Integer ``.nii.gz`` files are inflated with libdeflate
where the optional ``deflate`` package is installed (:mod:`~monai_unet.io.image_file`). By default voxels
keep their stored type (int16 CT stays int16; ``LoadImage`` then converts to its ``dtype``, float32 unless
``dtype=None``, one more pass over the volume). ``SimpleITKReader(dtype=np.float32)`` converts during the reordering
copy instead, and ``LoadImage``'s own conversion becomes a no-op: the faster choice with ``LoadImage``'s default
float32. The default stays the stored type because ``LoadImage(dtype=None)`` and ``monai-unet info`` rely on seeing
it. :class:`~monai_unet.io.load.LoadScan` goes further and skips the reordering copy (see there).

``read_header()`` gives the grid, the channels and the meta keys a header holds without decoding a voxel (every
check that the headers allow: awkward DICOM series, 4D files, channels on different grids); ``monai-unet segment``
uses it to check its inputs before the bundle reads them. The header decisions (which library reads a file, its
geometry) are made in one place, :mod:`~monai_unet.io.image_header`, for both reads.

Why ``read()`` does no work: ``LoadImage`` given a reader instance catches any exception raised by ``read()``
and silently tries its other readers (nibabel, pydicom). A DICOM series refused here for a missing slice would
then be read anyway by a reader without the check. So ``read()`` only records what to read and every check
runs in ``get_data()``, whose errors reach the caller.

Meta keys set (the writers, the bundles and the CLI rely on these):

===========================  ==========================================================================
``affine``                   voxel index → RAS mm, (ndim+1)² float64, as ``NibabelReader`` gives it
``original_affine``          the same, kept through later spatial transforms
``spatial_shape``            voxels per spatial axis (x, y[, z])
``original_channel_dim``     ``nan`` (no channel), ``-1`` (RGB, 4D with ``allow_4d``) or 0 (stacked files)
``space``                    ``"RAS"``
``spacing``                  voxel size (mm) along x, y[, z]
``source_origin_lps``        LPS position (mm) of voxel (0, 0, 0), as DICOM/ITK/Slicer state it
``source_spacing``           voxel size (mm), as SimpleITK gives it
``source_direction_lps``     (ndim, ndim) axis directions in LPS, columns = x, y, z
``source_format``            ``"nifti"``, ``"nrrd"``, ``"mha"``, ``"png"``, ``"tif"``, ``"dicom"``, ...
``source_dtype``             the stored voxel type before any ``dtype`` conversion (``"int16"``, ...)
``source_files``             DICOM only: the files in slice order (z = 0 first)
``SOPInstanceUIDs``          DICOM only: one per slice in z order (one for a multi-frame file)
``frame_order``              multi-frame DICOM only: the frame number (0-based) of each z slice
``SOPClassUID``,             DICOM only, from the first slice: ``StudyInstanceUID``, ``SeriesInstanceUID``,
  ...                        ``FrameOfReferenceUID``, ``Modality``, ``SeriesDescription``, ``SeriesNumber``,
                             ``PatientID``, ``PatientName``, ``StudyDate``, ``StudyID``, ``AccessionNumber``,
                             ``Manufacturer`` (strings; "" when absent)
``resampled``                DICOM with ``resample=True`` only, when the series was irregular
===========================  ==========================================================================

An empty SOPInstanceUID/SOPClassUID (seen in real exports) is taken from the file meta header.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from monai.data import ImageReader
from monai.utils import MetaKeys, SpaceKeys
from numpy.typing import DTypeLike

from monai_unet.io.dicom import is_dicom_file, read_dicom_header, read_dicom_series
from monai_unet.io.errors import ImageInputError
from monai_unet.io.image_file import FILE_SUFFIXES, read_image_file
from monai_unet.io.image_header import ImageHeader, read_image_header
from monai_unet.io.volume import Volume

__all__ = ["PendingImage", "SimpleITKReader"]

_GRID_TOLERANCE_MM = 1e-4  # largest affine difference between channels read from separate files


@dataclass(frozen=True)
class PendingImage:
    """What :meth:`SimpleITKReader.read` returns: the paths of one image, read by ``get_data``.

    Args:
        paths: one file or folder, or the files of one DICOM series.
        options: the reader options in force for this image.
    """

    paths: tuple[str, ...]
    options: tuple[tuple[str, Any], ...]

    @property
    def name(self) -> str:
        """The path used in messages (the folder for a list of DICOM files)."""
        return self.paths[0] if len(self.paths) == 1 else str(Path(self.paths[0]).parent)


class SimpleITKReader(ImageReader):
    """Read NIfTI/NRRD/MetaImage/PNG/TIFF files and DICOM series with SimpleITK, affine in MONAI's RAS convention.

    Args:
        channel_dim: as in MONAI's readers: None lets the reader decide (no channel for scalar images, last axis
            for RGB or 4D), or the index of the channel axis of the returned array.
        series_uid: SeriesInstanceUID to read from a folder holding several DICOM series.
        min_slices: fewest slices accepted as a DICOM volume.
        spacing_tolerance: accepted deviation of DICOM slice gaps from their median, as a fraction of it.
        resample: resample gantry-tilted or unevenly spaced DICOM series onto a regular grid (float32,
            trilinear) instead of refusing them.
        skip_unreadable: ignore damaged DICOM files of a series (with a warning) instead of refusing the series.
        allow_4d: accept 4D files, their fourth axis becoming a trailing channel axis; when False a 4D file with
            more than one volume raises.
        check_finite: refuse floating-point images holding NaN or infinite voxels.
        orthonormal_tolerance: accepted deviation of NIfTI direction cosines from orthonormal (read via nibabel
            and orthonormalised, with a warning).
        dtype: type of the returned voxels; None (default) keeps the stored type. Pass ``np.float32`` with
            ``LoadImage``'s default ``dtype`` to convert in the reordering pass instead of once more afterwards.
            float32 holds every integer up to 2**24 exactly (all 8- and 16-bit data).
        palette_indices: read PNG, GIF and BMP pictures with a colour palette as their palette indices (label maps
            saved as PASCAL VOC saves them: index = class), not as the colours they show; for label keys only.
    """

    def __init__(
        self,
        channel_dim: int | None = None,
        *,
        series_uid: str | None = None,
        min_slices: int = 3,
        spacing_tolerance: float = 0.01,
        resample: bool = False,
        skip_unreadable: bool = False,
        allow_4d: bool = False,
        check_finite: bool = True,
        orthonormal_tolerance: float = 1e-2,
        dtype: DTypeLike = None,
        palette_indices: bool = False,
    ) -> None:
        super().__init__()
        self.channel_dim = channel_dim
        self.options: dict[str, Any] = {
            "series_uid": series_uid,
            "min_slices": min_slices,
            "spacing_tolerance": spacing_tolerance,
            "resample": resample,
            "skip_unreadable": skip_unreadable,
            "allow_4d": allow_4d,
            "check_finite": check_finite,
            "orthonormal_tolerance": orthonormal_tolerance,
            "dtype": dtype,
            "palette_indices": palette_indices,
        }

    def verify_suffix(self, filename: Sequence[PathLike] | PathLike) -> bool:
        """True for folders, DICOM files and the suffixes in :data:`~monai_unet.io.image_file.FILE_SUFFIXES`."""
        names = [filename] if isinstance(filename, (str, PathLike)) else list(filename)
        return all(
            Path(n).is_dir() or str(n).lower().endswith((*FILE_SUFFIXES, ".dcm")) or is_dicom_file(n) for n in names
        )

    def read(self, data: Sequence[PathLike] | PathLike, **kwargs: Any) -> PendingImage | list[PendingImage]:
        """Record what to read; never raises (see the module docstring). ``kwargs`` override reader options."""
        options = {**self.options, **{k: v for k, v in kwargs.items() if k in self.options}}
        frozen = tuple(sorted(options.items()))
        names = [str(data)] if isinstance(data, (str, PathLike)) else [str(n) for n in data]
        if len(names) > 1 and all(Path(n).is_file() and is_dicom_file(n) for n in names):
            return PendingImage(tuple(names), frozen)  # the files of one DICOM series
        pending = [PendingImage((n,), frozen) for n in names]
        return pending[0] if len(pending) == 1 else pending

    def get_data(
        self, img: PendingImage | Sequence[PendingImage], *, contiguous: bool = True
    ) -> tuple[np.ndarray, dict]:
        """Read, check and return ``(array, meta)``; arrays of several images are stacked on a new axis 0.

        Args:
            img: what :meth:`read` returned.
            contiguous: True (what ``LoadImage`` needs) returns a C-contiguous array; False may return a
                transposed view of the file's voxel order instead, saving the reordering copy (for
                :class:`~monai_unet.io.load.LoadScan`).

        Returns:
            The voxels (x, y[, z])[, channel] in the ``dtype`` option's type (default: stored), or
            (C, x, y[, z]) for several files, and the meta dict described in the module docstring.

        Raises:
            ImageInputError: any bad input (see :mod:`monai_unet.io.dicom` and :mod:`monai_unet.io.image_file`),
                non-finite voxels, or channels on different grids.
        """
        items = [img] if isinstance(img, PendingImage) else list(img)
        arrays, metas = [], []
        for item in items:
            array, meta = self._read_one(item, contiguous)
            arrays.append(array)
            metas.append(meta)
        if len(items) == 1:
            return arrays[0], metas[0]
        _check_same_grid(items, [a.shape for a in arrays], [m[MetaKeys.AFFINE] for m in metas])
        meta = dict(metas[0])
        meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = 0
        if not contiguous and all(a.T.flags.c_contiguous for a in arrays):
            # Stack in memory order (C, z, y, x), then view it as (C, x, y, z): no reordering copy.
            stacked = np.stack([a.T for a in arrays], axis=0)
            return stacked.transpose(0, *range(stacked.ndim - 1, 0, -1)), meta
        return np.stack(arrays, axis=0), meta

    def read_header(self, img: PendingImage | Sequence[PendingImage]) -> ImageHeader:
        """What :meth:`get_data` would return, from the headers alone (no voxel is decoded): the grid, the channels
        (of one image: its 4D volumes or colours; of several: one each) and the meta keys the headers give. Every
        header check runs (an awkward DICOM series, a 4D file, channels on different grids); damaged voxel data is
        only found by :meth:`get_data`.

        Raises:
            ImageInputError: as :meth:`get_data`, for problems visible in the headers.
        """
        items = [img] if isinstance(img, PendingImage) else list(img)
        headers = [self._header_one(item) for item in items]
        if len(items) == 1:
            return headers[0]
        sizes = [h.grid.size + ((h.channels,) if h.channels > 1 else ()) for h in headers]
        _check_same_grid(items, sizes, [h.grid.ras_affine() for h in headers])
        return ImageHeader(headers[0].grid, len(items), headers[0].meta)

    def _header_one(self, item: PendingImage) -> ImageHeader:
        options = dict(item.options)
        source = self._dicom_source(item)
        if source is not None:
            grid, meta = read_dicom_header(source, **self._dicom_options(options))
            return ImageHeader(grid, 1, meta, "dicom")
        return read_image_header(
            item.paths[0],
            allow_4d=options["allow_4d"],
            orthonormal_tolerance=options["orthonormal_tolerance"],
            palette_indices=options["palette_indices"],
        )

    @staticmethod
    def _dicom_source(item: PendingImage) -> str | list[str] | None:
        """The DICOM series ``item`` names (a folder, or a list of files), or None for an image file."""
        path = item.paths[0]
        is_dicom_file_ = Path(path).is_file() and is_dicom_file(path)
        if len(item.paths) > 1 or Path(path).is_dir() or is_dicom_file_:
            return list(item.paths) if len(item.paths) > 1 or is_dicom_file_ else path
        return None

    @staticmethod
    def _dicom_options(options: dict[str, Any]) -> dict[str, Any]:
        return {k: options[k] for k in ("series_uid", "min_slices", "spacing_tolerance", "resample", "skip_unreadable")}

    def _read_one(self, item: PendingImage, contiguous: bool) -> tuple[np.ndarray, dict]:
        options = dict(item.options)
        path = item.paths[0]
        source = self._dicom_source(item)
        if source is not None:
            volume = read_dicom_series(source, **self._dicom_options(options))  # stored type, C-contiguous (x, y, z)
            volume.meta["source_dtype"] = volume.array.dtype.name
            if options["dtype"] is not None:
                volume.array = volume.array.astype(options["dtype"], copy=False)  # in memory order: cheap
        else:
            volume = read_image_file(
                path,
                allow_4d=options["allow_4d"],
                orthonormal_tolerance=options["orthonormal_tolerance"],
                dtype=options["dtype"],
                contiguous=contiguous,
                palette_indices=options["palette_indices"],
            )
        if options["check_finite"] and np.dtype(volume.meta["source_dtype"]).kind in "fc":
            _check_finite(item.name, volume.array)  # integers converted to float cannot become NaN or infinite
        return volume.array, self._meta(volume)

    def _meta(self, volume: Volume) -> dict:
        ndim = volume.spatial_ndim
        grid = volume.grid
        affine = grid.ras_affine()
        meta = dict(volume.meta)
        meta.update(
            {
                MetaKeys.AFFINE: affine,
                MetaKeys.ORIGINAL_AFFINE: affine.copy(),
                MetaKeys.SPACE: SpaceKeys.RAS,
                "spacing": np.asarray(grid.spacing, dtype=np.float64),
            }
        )
        meta.update(grid.to_meta())
        if self.channel_dim is not None:
            meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = self.channel_dim
        else:
            meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = float("nan") if volume.array.ndim == ndim else -1
        return meta


def _check_same_grid(items: list[PendingImage], shapes: list[tuple[int, ...]], affines: list[np.ndarray]) -> None:
    """Refuse channels read from several files whose shapes or RAS affines differ (beyond 1e-4 mm)."""
    first = items[0]
    for item, shape, affine in zip(items[1:], shapes[1:], affines[1:], strict=True):
        if tuple(shape) != tuple(shapes[0]):
            raise ImageInputError(
                item.name,
                f"has shape {tuple(shape)}, but {first.name} (the first channel) has {tuple(shapes[0])}",
                "channels read together must lie on the same grid; resample one onto the other first",
            )
        difference = float(np.abs(affine - affines[0]).max())
        if difference > _GRID_TOLERANCE_MM:
            raise ImageInputError(
                item.name,
                f"has a different affine from {first.name} (the first channel), by up to {difference:.4g} mm",
                "channels read together must lie on the same grid; resample one onto the other first",
            )


def _check_finite(name: str, array: np.ndarray) -> None:
    """Refuse NaN/inf voxels: one would turn every normalised voxel and the loss into NaN."""
    if array.dtype.kind not in "fc":
        return
    finite = np.isfinite(array)
    if finite.all():
        return
    bad = np.argwhere(~finite)
    raise ImageInputError(
        name,
        f"holds {len(bad)} NaN or infinite voxel(s), the first at voxel {tuple(int(i) for i in bad[0])}",
        "fix the conversion that produced it, or replace them (e.g. with 0) before use",
    )
