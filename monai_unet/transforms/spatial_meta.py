"""The metadata side of a spatial transform: the voxel spacing read from a ``MetaTensor``'s affine, and the affine
carried through a voxel-to-voxel map, so a transformed image keeps its place in world space."""

from __future__ import annotations

import numpy as np
import torch
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing

__all__ = ["image_spacing", "with_moved_affine"]


def image_spacing(img: torch.Tensor, spatial_dims: int) -> list[float] | None:
    """Voxel spacing (mm) from a ``MetaTensor``'s affine (the first item's for a batch), or None for a plain
    tensor."""
    if not isinstance(img, MetaTensor):
        return None
    affine = img.affine
    if affine.ndim == 3:
        affine = affine[0]
    return affine_to_spacing(affine.double(), r=spatial_dims, suppress_zeros=False).tolist()


def with_moved_affine(out: torch.Tensor, like: torch.Tensor, maps: np.ndarray) -> torch.Tensor:
    """Wrap ``out`` as a ``MetaTensor`` with ``like``'s metadata and the affine moved by ``maps``.

    Args:
        out: the transformed image.
        like: the input it came from (a plain tensor returns ``out`` unchanged).
        maps: ``(N, d + 1, d + 1)`` homogeneous maps from output to input voxel coordinates, one per batch item.
    """
    if not isinstance(like, MetaTensor):
        return out
    affine = like.affine
    d = maps.shape[-1] - 1
    rank = affine.shape[-1] - 1  # MONAI may hold a 2D image's affine as 4×4
    embedded = np.tile(np.eye(rank + 1), (maps.shape[0], 1, 1))
    embedded[:, :d, :d] = maps[:, :d, :d]
    embedded[:, :d, rank] = maps[:, :d, d]
    step = torch.as_tensor(embedded, dtype=affine.dtype, device=affine.device)
    new_affine = affine @ step if affine.ndim == 3 else affine @ step[0]
    meta = {k: v for k, v in like.meta.items() if k != "affine"}
    result = MetaTensor(out, affine=new_affine, meta=meta)
    result.is_batch = like.is_batch
    return result
