"""The grid and patch geometry of a plan: target spacing (nnU-Net's anisotropy rule), coarsening of thick classes,
median shapes, the per-axis pooling topology and patch sizes that fit it. Shapes and sizes are in voxels, spacings
in mm (1 per pixel for pictures)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monai_unet.plan.fingerprint import Fingerprint

__all__ = [
    "case_shape_at",
    "coarsening",
    "fine_axes",
    "fit_patch",
    "flat_case_axis",
    "initial_patch",
    "median_shape",
    "pooling_divisors",
    "target_spacing",
    "thin_classes",
    "topology",
]

ANISOTROPY = 3.0
MAX_POOLS = 5
MIN_FEATURE_MAP = 4
MAX_PATCH_VOXELS = {2: 512 * 512, 3: 128**3}
#: Coarsen the fine axes while the thinnest foreground class (10th percentile over cases) stays this many voxels
#: thick, by at most MAX_COARSENING: large objects gain context and training steps, thin ones keep every voxel.
MIN_THICKNESS_VOXELS = 8.0
MAX_COARSENING = 2.0


def flat_case_axis(fp: Fingerprint) -> int | None:
    """The axis along which every case of a 3D set is one voxel thick (slices stored as 3D files), or None."""
    if fp.spatial_dims != 3:
        return None
    shapes = np.array([c.shape for c in fp.cases])
    return next((a for a in range(3) if (shapes[:, a] == 1).all()), None)


def target_spacing(fp: Fingerprint) -> tuple[list[float] | None, str]:
    if fp.spatial_dims == 2:
        return None, "2D pictures are trained on their own pixels (no physical spacing to unify)."
    spacings = np.array([c.spacing for c in fp.cases], dtype=float)
    shapes = np.array([c.shape for c in fp.cases], dtype=float)
    target = np.median(spacings, axis=0)
    flat = flat_case_axis(fp)
    if flat is not None:  # no case may gain a slice along the flat axis, so none is upsampled along it
        target[flat] = spacings[:, flat].max()
        return [round(float(s), 5) for s in target], (
            f"median spacing {np.round(np.median(spacings, axis=0), 3).tolist()} mm; every case is one voxel thick "
            f"along axis {flat} (slices stored as 3D files), so that axis keeps its single voxel (the largest of "
            "its spacings) and the network works in-plane (kernels, pooling and rotation)."
        )
    worst = int(np.argmax(target))
    others = [a for a in range(3) if a != worst]
    finest = float(target[others].min())
    median_shape = np.median(shapes * spacings / target, axis=0)
    anisotropic = target[worst] > ANISOTROPY * finest and median_shape[worst] * ANISOTROPY < median_shape[others].min()
    if anisotropic:
        target[worst] = max(float(np.percentile(spacings[:, worst], 10)), finest)
        reason = (
            f"median spacing {np.round(np.median(spacings, axis=0), 3).tolist()} mm; axis {worst} is more than "
            f"{ANISOTROPY:g}x coarser with few voxels, so it takes the 10th percentile of its spacings "
            f"({target[worst]:.3g} mm) and keeps its slices."
        )
    else:
        reason = f"median spacing of the training cases ({np.round(target, 3).tolist()} mm)."
    return [round(float(s), 5) for s in target], reason


def fine_axes(spacing: Sequence[float]) -> list[int]:
    return [a for a, s in enumerate(spacing) if s <= 2.0 * min(spacing)]


def _thickness_10th(fp: Fingerprint) -> dict[int, float]:
    """Per foreground class present in some case: the 10th percentile over those cases of its thickness (mm, or
    pixels for pictures; see :mod:`~monai_unet.plan.fingerprint`)."""
    per_class = {}
    for index in range(1, fp.num_classes):
        values = [c.class_thickness[index] for c in fp.cases if c.class_thickness[index] is not None]
        if values:
            per_class[index] = float(np.percentile(values, 10))
    return per_class


def coarsening(fp: Fingerprint, spacing: Sequence[float] | None) -> tuple[float, str]:
    """How much the fine axes can be coarsened: the thinnest foreground class (10th percentile over the cases where
    it is present of its thickness, see :mod:`~monai_unet.plan.fingerprint`) over ``MIN_THICKNESS_VOXELS`` voxels,
    at most ``MAX_COARSENING``; 1 below 1.25 (not worth a resampling)."""
    grid = spacing if spacing is not None else [1.0] * fp.spatial_dims
    finest = min(grid[a] for a in fine_axes(grid))
    per_class = _thickness_10th(fp)
    if not per_class:
        return 1.0, "no foreground in any case; the grid is kept."
    thinnest = min(per_class.values()) / finest
    factor = float(np.clip(thinnest / MIN_THICKNESS_VOXELS, 1.0, MAX_COARSENING))
    unit = "voxels" if spacing is not None else "pixels"
    if factor < 1.25:
        return 1.0, f"the thinnest class is {thinnest:.1f} {unit} thick (10th percentile), so the grid is kept."
    return factor, (
        f"the thinnest class is {thinnest:.1f} {unit} thick (10th percentile), so the fine axes are coarsened "
        f"{factor:.2f}x: it stays {thinnest / factor:.1f} {unit} thick (at least {MIN_THICKNESS_VOXELS:g}) while the "
        "patch sees more context and a step costs less (inverted at inference)."
    )


def thin_classes(fp: Fingerprint, spacing: Sequence[float] | None, scale: float = 1.0) -> dict[int, float]:
    """The foreground classes thinner than ``MIN_THICKNESS_VOXELS`` on the planned grid (``spacing`` in mm for 3D,
    or pictures scaled by ``scale``), with their thickness there in voxels (10th percentile over the cases)."""
    finest = min(spacing[a] for a in fine_axes(spacing)) if spacing is not None else 1.0 / scale
    return {
        index: round(mm / finest, 2) for index, mm in _thickness_10th(fp).items() if mm / finest < MIN_THICKNESS_VOXELS
    }


def median_shape(fp: Fingerprint, spacing: Sequence[float] | None, scale: float, cropped: bool) -> np.ndarray:
    """Median case shape (voxels) as :func:`case_shape_at` estimates each case's."""
    return np.median([case_shape_at(c, spacing, scale, cropped) for c in fp.cases], axis=0)


def topology(patch: Sequence[int], spacing: Sequence[float]) -> tuple[list[list[int]], list[list[int]]]:
    """Per-level pooling factors and kernel sizes for a patch (voxels) at ``spacing`` (mm, or 1 per pixel)."""
    sizes = np.asarray(patch, dtype=float)
    current = np.asarray(spacing, dtype=float)

    def kernel() -> list[int]:  # 1 along a coarse axis, and along one a single voxel thick (a slice stored as 3D)
        return [3 if s <= 2 * current.min() and n > 1 else 1 for s, n in zip(current, sizes, strict=True)]

    kernels, pools = [kernel()], []
    while len(pools) < MAX_POOLS:
        pool = [
            2 if sizes[a] / 2 >= MIN_FEATURE_MAP and current[a] <= 2 * current.min() else 1 for a in range(len(sizes))
        ]
        if not any(p == 2 for p in pool):
            break
        pools.append(pool)
        sizes = sizes / np.asarray(pool)
        current = current * np.asarray(pool)
        kernels.append(kernel())
    return pools, kernels


def pooling_divisors(pools: Sequence[Sequence[int]], n: int) -> list[int]:
    """Per-axis product of the pooling factors: a patch must be a multiple of it along each axis."""
    return [int(np.prod([p[a] for p in pools])) if pools else 1 for a in range(n)]


def fit_patch(shape: Sequence[float], spacing: Sequence[float], dims: int) -> tuple[list[int], list, list]:
    """Round a wanted patch to the network's divisors; the topology follows the rounded patch."""
    patch = [max(1, round(s)) for s in shape]
    for _ in range(3):  # pools depend on the patch and the patch on the pools' divisors: settle in a few rounds
        pools, kernels = topology(patch, spacing)
        divisors = pooling_divisors(pools, dims)
        patch = [max(d, round(p / d) * d) for p, d in zip(patch, divisors, strict=True)]
    pools, kernels = topology(patch, spacing)
    return patch, pools, kernels


def initial_patch(median_shape: np.ndarray, dims: int) -> np.ndarray:
    patch = np.maximum(median_shape, 1.0)
    while np.prod(patch) > MAX_PATCH_VOXELS[dims]:
        largest = int(np.argmax(patch))
        patch[largest] *= 0.9
    return patch


def case_shape_at(case, spacing: Sequence[float] | None, scale: float, cropped: bool = False) -> list[float]:
    """A case's shape (voxels) after resampling to ``spacing`` (or scaling by ``scale``) and, when ``cropped``,
    cropping to the nonzero region (its bounding box, shrunk evenly over the axes as an estimate)."""
    crop = case.nonzero_crop_fraction ** (1.0 / len(case.shape)) if cropped else 1.0
    if spacing is None:
        return [s * scale * crop for s in case.shape]
    return [s * sp / t * crop for s, sp, t in zip(case.shape, case.spacing, spacing, strict=True)]
