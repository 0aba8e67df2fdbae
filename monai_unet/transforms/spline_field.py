"""The maths of the elastic deformation: the interpolating cubic B-spline of a coarse grid of control
displacements (mirror boundary conditions, separable basis matrices), rotations in voxel space, and the fold guard
that scales a draw's displacements until the map's Jacobian stays above a floor.

Used by :mod:`monai_unet.transforms.elastic`; see its docstring for the geometry of the control grid.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

__all__ = ["interpolation_basis", "rotation_matrix", "unfolding_scale"]


def _cubic_bspline(t: np.ndarray, derivative: bool = False) -> np.ndarray:
    """The centred cubic B-spline β³(t) (support (-2, 2)), or its derivative."""
    a = np.abs(t)
    if derivative:
        return np.sign(t) * np.where(a < 1, -2.0 * a + 1.5 * a**2, np.where(a < 2, -((2.0 - a) ** 2) / 2.0, 0.0))
    return np.where(a < 1, 2.0 / 3.0 - a**2 + a**3 / 2.0, np.where(a < 2, (2.0 - a) ** 3 / 6.0, 0.0))


def _mirror(k: np.ndarray, n: int) -> np.ndarray:
    """Index ``k`` of a sequence of length ``n`` extended by reflection about its end points (…c b | a b c | b a…)."""
    if n == 1:
        return np.zeros_like(k)
    period = 2 * (n - 1)
    k = np.mod(k, period)
    return np.where(k >= n, period - k, k)


@functools.lru_cache(maxsize=16)
def _coefficients_from_values(n: int) -> np.ndarray:
    """``(n, n)``: B-spline coefficients (mirror-extended) of the cubic spline through ``n`` control values."""
    knots = np.arange(n)
    collocation = np.zeros((n, n))  # spline value at knot i from the n coefficients
    for shift in (-1, 0, 1):
        np.add.at(collocation, (knots, _mirror(knots + shift, n)), _cubic_bspline(np.full(n, -shift, float)))
    return np.linalg.inv(collocation)


def _spline_weights(t: np.ndarray, n: int, derivative: bool = False) -> np.ndarray:
    """``(len(t), n)``: value (or derivative in control units) at control-grid coordinates ``t`` per control value."""
    if n == 1:  # a constant field
        return np.full((len(t), 1), 0.0 if derivative else 1.0)
    coefficients = _coefficients_from_values(n)
    base = np.floor(t).astype(np.int64)
    weights = np.zeros((len(t), n))
    for shift in (-1, 0, 1, 2):
        k = base + shift
        weights += _cubic_bspline(t - k, derivative)[:, None] * coefficients[_mirror(k, n)]
    return weights


@functools.lru_cache(maxsize=64)
def _basis_cached(in_size: int, out_size: int, offset: int, n: int) -> np.ndarray:
    if in_size == 1:
        return _spline_weights(np.zeros(out_size), n)
    return _spline_weights((np.arange(out_size) + offset) * (n - 1) / (in_size - 1), n)


def interpolation_basis(in_size: int, out_size: int, offset: int, num_control_points: int) -> np.ndarray:
    """Weights of the interpolating cubic B-spline along one axis (cached; ``float64``).

    Args:
        in_size: voxels along the axis of the input image; the control points span it, corner to corner.
        out_size: voxels along the axis of the output.
        offset: input voxel index of output voxel 0 (``(in_size - out_size) // 2`` for a centred crop).
        num_control_points: control points along the axis (≥ 1).

    Returns:
        ``(out_size, num_control_points)``: the field at output voxel ``p`` is ``basis[p] @ control_values``. Rows
        at control points are unit vectors (the spline passes through the control values); every row sums to 1.
    """
    if num_control_points < 1:
        raise ValueError(f"num_control_points must be at least 1, got {num_control_points}")
    return _basis_cached(int(in_size), int(out_size), int(offset), int(num_control_points))


def rotation_matrix(angles: np.ndarray) -> np.ndarray:
    """Rotation in voxel space: one angle (2D) or three angles about array axes 0, 1, 2 (3D), in radians."""
    if angles.shape[0] == 1:
        c, s = math.cos(angles[0]), math.sin(angles[0])
        return np.array([[c, -s], [s, c]])
    rotation = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = math.cos(angle), math.sin(angle)
        i, j = [a for a in range(3) if a != axis]
        plane = np.eye(3)
        plane[i, i], plane[i, j], plane[j, i], plane[j, j] = c, -s, s, c
        rotation = rotation @ plane
    return rotation


def unfolding_scale(
    displacements: np.ndarray, linear: np.ndarray, in_shape: Sequence[int], min_jacobian: float
) -> float:
    """The largest factor in (0, 1] by which to scale one draw's control displacements so that the map does not fold.

    The Jacobian of the map ``q(p) = A p + s u(p) + const`` is ``A + s ∇u``; its determinant relative to ``det A`` is
    ``det(I + s M)`` with ``M = A⁻¹ ∇u``, a polynomial in ``s`` whose coefficients are the elementary symmetric
    functions of ``M`` (trace, sum of principal 2×2 minors, determinant). ``∇u`` is evaluated analytically on a lattice
    of 8 points per control interval over the whole input. When the polynomial's minimum over the lattice at ``s = 1``
    is below ``min_jacobian``, ``s`` is found by bisection.

    Args:
        displacements: ``(d, *num_control_points)`` control displacements (voxels).
        linear: ``(d, d)`` affine part. in_shape: spatial shape of the input. min_jacobian: the floor, in (0, 1).
    """
    d = len(in_shape)
    counts = displacements.shape[1:]
    values, slopes = [], []
    for axis in range(d):
        n, size = counts[axis], in_shape[axis]
        t = np.linspace(0.0, n - 1.0, 8 * (n - 1) + 1)
        values.append(_spline_weights(t, n))
        slopes.append(_spline_weights(t, n, derivative=True) * ((n - 1) / (size - 1) if size > 1 else 0.0))
    letters = "abc"[:d]
    spec = ",".join(f"{letter.upper()}{letter}" for letter in letters) + f",{letters}->" + letters.upper()
    gradient = np.empty((*(len(v) for v in values), d, d))  # gradient[..., i, a] = d u_i / d p_a
    for i in range(d):
        for a in range(d):
            factors = [slopes[k] if k == a else values[k] for k in range(d)]
            gradient[..., i, a] = np.einsum(spec, *factors, displacements[i], optimize=True)
    m = np.linalg.inv(linear) @ gradient  # (..., d, d)
    trace = np.trace(m, axis1=-2, axis2=-1)
    if d == 2:
        coefficients = [trace, m[..., 0, 0] * m[..., 1, 1] - m[..., 0, 1] * m[..., 1, 0]]
    else:
        minors = sum(m[..., i, i] * m[..., j, j] - m[..., i, j] * m[..., j, i] for i, j in ((0, 1), (0, 2), (1, 2)))
        coefficients = [trace, minors, np.linalg.det(m)]

    def smallest_ratio(scale: float) -> float:
        polynomial = np.zeros_like(trace)
        for coefficient in reversed(coefficients):  # Horner: 1 + s (c1 + s (c2 + s c3))
            polynomial = (polynomial + coefficient) * scale
        return float(np.min(polynomial)) + 1.0

    if smallest_ratio(1.0) >= min_jacobian:
        return 1.0
    low, high = 0.0, 1.0
    for _ in range(20):
        middle = (low + high) / 2
        low, high = (middle, high) if smallest_ratio(middle) >= min_jacobian else (low, middle)
    return low
