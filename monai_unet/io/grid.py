"""The voxel grid of a reference image, in ITK's LPS terms: size, spacing, origin and direction.

MONAI keeps geometry as an affine from voxel index ``(i, j, k)`` to RAS millimetres (x grows towards the patient's
Right, y towards Anterior). ITK, NRRD (``space: left-posterior-superior``) and DICOM use LPS (x towards Left, y towards
Posterior). The two differ only by the sign of the first two world axes, so the conversion is exact:
``affine_lps = diag(-1, -1, 1, 1) @ affine_ras``. Every writer goes through :class:`VoxelGrid`, so all formats place
a label voxel at the same point in the patient.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
import torch
from monai.data import MetaTensor

from monai_unet.io.axes import reversed_axes_contiguous

__all__ = ["VoxelGrid"]


def _ras_lps_flip(ndim: int) -> np.ndarray:
    """``diag(-1, -1, 1, ..., 1)`` of size ``ndim + 1``: RAS ↔ LPS for 2D (x, y) and 3D (x, y, z) worlds."""
    return np.diag([-1.0, -1.0] + [1.0] * (ndim - 1))


@dataclass(frozen=True)
class VoxelGrid:
    """Where the voxels of an image lie in the patient (ITK conventions, LPS world, millimetres).

    Args:
        size: voxels along each array axis ``(i, j[, k])``.
        spacing: voxel size along each array axis, in mm (all > 0).
        origin: LPS position of the centre of voxel ``(0, 0[, 0])``, in mm.
        direction: unit direction of each array axis in LPS, as the columns of a ``ndim × ndim`` matrix.
    """

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: np.ndarray

    def __post_init__(self) -> None:
        # any sequences or arrays in; plain tuples and a float64 (ndim × ndim) matrix kept
        ndim = len(self.size)
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        object.__setattr__(self, "origin", tuple(float(o) for o in self.origin))
        object.__setattr__(self, "direction", np.asarray(self.direction, dtype=np.float64).reshape(ndim, ndim))

    @property
    def ndim(self) -> int:
        return len(self.size)

    @classmethod
    def from_affine(cls, affine_ras: np.ndarray | torch.Tensor, size: Sequence[int]) -> VoxelGrid:
        """The grid of an array of spatial shape ``size`` whose voxel index maps to RAS mm through ``affine_ras``.

        Args:
            affine_ras: ``(ndim + 1) × (ndim + 1)`` homogeneous matrix (MONAI's ``MetaTensor.affine``).
            size: spatial shape ``(i, j[, k])`` in voxels.

        Raises:
            ValueError: the affine does not match ``size`` in dimension, or has a zero-length axis.
        """
        affine = np.asarray(affine_ras.cpu() if isinstance(affine_ras, torch.Tensor) else affine_ras, dtype=np.float64)
        ndim = len(size)
        if affine.shape != (ndim + 1, ndim + 1):
            raise ValueError(f"a {ndim}D grid needs a {ndim + 1}×{ndim + 1} affine, got shape {affine.shape}")
        lps = _ras_lps_flip(ndim) @ affine
        linear = lps[:ndim, :ndim]
        spacing = np.linalg.norm(linear, axis=0)
        if np.any(spacing <= 0) or not np.all(np.isfinite(lps)):
            raise ValueError(f"affine has a zero-length or non-finite axis: {affine.tolist()}")
        return cls(size=size, spacing=spacing, origin=lps[:ndim, ndim], direction=linear / spacing)

    @classmethod
    def from_sitk(cls, image: sitk.Image | sitk.ImageFileReader) -> VoxelGrid:
        """The grid of a SimpleITK image, or of a file reader after ``ReadImageInformation`` (already LPS)."""
        return cls(image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection())

    @classmethod
    def from_reference(cls, reference: MetaTensor | sitk.Image) -> VoxelGrid:
        """The grid of a reference image: a SimpleITK image, or a MONAI ``MetaTensor`` (its last ``len(affine) - 1``
        axes are spatial, so a channel axis in front is allowed)."""
        if isinstance(reference, sitk.Image):
            return cls.from_sitk(reference)
        if not isinstance(reference, MetaTensor):
            raise TypeError(
                f"reference must be a monai MetaTensor or a SimpleITK Image, got {type(reference).__name__}"
            )
        ndim = reference.affine.shape[-1] - 1
        return cls.from_affine(reference.affine, reference.shape[-ndim:])

    @classmethod
    def from_meta(cls, meta: Mapping) -> VoxelGrid:
        """The grid recorded in a reader's meta (the keys of :meth:`to_meta`; ``SimpleITKReader`` sets them)."""
        keys = ("spatial_shape", "source_spacing", "source_origin_lps", "source_direction_lps")
        return cls(*(np.asarray(meta[key]).reshape(-1) for key in keys))

    def to_meta(self) -> dict[str, np.ndarray]:
        """The one meta schema of a grid: ``spatial_shape`` (voxels), ``source_spacing`` (mm),
        ``source_origin_lps`` (mm), ``source_direction_lps`` (ndim × ndim, columns = axes), as the reader records
        them and ``info``, ``segment`` and the writers read them."""
        return {
            "spatial_shape": np.asarray(self.size),
            "source_spacing": np.asarray(self.spacing, dtype=np.float64),
            "source_origin_lps": np.asarray(self.origin, dtype=np.float64),
            "source_direction_lps": np.asarray(self.direction, dtype=np.float64),
        }

    @classmethod
    def from_header(cls, path: str | os.PathLike, ndim: int | None = None) -> VoxelGrid:
        """The grid of an image file read from its header alone (no voxel is decoded); with ``ndim``, only its
        first ``ndim`` axes (a probability file's trailing channel axes are left out).

        Raises:
            RuntimeError: SimpleITK cannot read the header.
        """
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        grid = cls.from_sitk(reader)
        return grid if ndim is None else grid.first_axes(ndim)

    def first_axes(self, ndim: int) -> VoxelGrid:
        """The grid of the first ``ndim`` axes (the spatial ones of a 4D image or of a file with channel axes);
        this grid itself when it has no more."""
        if ndim >= self.ndim:
            return self
        n = ndim
        return VoxelGrid(self.size[:n], self.spacing[:n], self.origin[:n], self.direction[:n, :n])

    def differences(self, other: VoxelGrid, atol_mm: float = 1e-3) -> list[tuple[str, tuple, tuple]]:
        """What differs between this grid and ``other``: ``(quantity, ours, theirs)`` for the size, origin (mm),
        spacing (mm) and direction beyond ``atol_mm``; empty when they are the same grid."""
        pairs = {
            "size": (self.size, other.size),
            "origin (mm)": (self.origin, other.origin),
            "spacing (mm)": (self.spacing, other.spacing),
            "direction": (tuple(self.direction.ravel()), tuple(other.direction.ravel())),
        }
        return [
            (what, tuple(np.round(ours, 4)), tuple(np.round(theirs, 4)))
            for what, (ours, theirs) in pairs.items()
            if len(ours) != len(theirs) or not np.allclose(ours, theirs, rtol=0.0, atol=atol_mm)
        ]

    def lps_affine(self) -> np.ndarray:
        """``(ndim + 1) × (ndim + 1)`` matrix mapping a voxel index to LPS mm."""
        affine = np.eye(self.ndim + 1)
        affine[: self.ndim, : self.ndim] = self.direction * np.asarray(self.spacing)
        affine[: self.ndim, self.ndim] = self.origin
        return affine

    def ras_affine(self) -> np.ndarray:
        """``(ndim + 1) × (ndim + 1)`` matrix mapping a voxel index to RAS mm (MONAI's convention)."""
        return _ras_lps_flip(self.ndim) @ self.lps_affine()

    def to_3d(self) -> VoxelGrid:
        """A 3D grid: a 2D grid gains one slice of 1 mm along the LPS z axis (3D grids are returned as they are)."""
        if self.ndim == 3:
            return self
        direction = np.eye(3)
        direction[:2, :2] = self.direction
        return VoxelGrid((*self.size, 1), (*self.spacing, 1.0), (*self.origin, 0.0), direction)

    def sitk_image(self, array_ijk: np.ndarray) -> sitk.Image:
        """A SimpleITK image of ``array_ijk`` (spatial shape ``size``, index order ``(i, j[, k])``) on this grid."""
        if tuple(array_ijk.shape) != self.size:
            raise ValueError(f"array shape {array_ijk.shape} differs from the grid size {self.size}")
        image = sitk.GetImageFromArray(
            reversed_axes_contiguous(array_ijk, self.ndim, copy=False)
        )  # SimpleITK: (k, j, i)
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(tuple(float(v) for v in self.direction.ravel()))
        return image

    def same_as(self, other: VoxelGrid, atol_mm: float = 1e-3) -> bool:
        """Same size, and voxel-to-LPS affines equal within ``atol_mm`` (mm per voxel and mm of origin)."""
        return self.size == other.size and np.allclose(self.lps_affine(), other.lps_affine(), rtol=0, atol=atol_mm)
