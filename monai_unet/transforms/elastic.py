"""The paper's random elastic deformation: a coarse grid of random displacements, smoothly interpolated, one resample.

Ronneberger et al. (2015), section 3.1: random displacement vectors on a coarse 3×3 grid, drawn from a Gaussian with
10 pixels standard deviation, interpolated to every pixel. Here the dense field is the interpolating cubic B-spline
of the control displacements, built separably (one small basis matrix per axis), and composed with optional
rotation, zoom and flips into a single sampling grid, so every image is interpolated once and the labels once.

The control points sit evenly spaced over the input image, the first and last on the corner voxel centres: along an
axis of ``S`` voxels with ``n`` control points, control point ``k`` is at voxel ``k (S - 1) / (n - 1)``. The spline
uses mirror-symmetric boundary conditions (the coefficients are solved so that the curve passes exactly through the
control displacements, and the spline is extended by reflection about the end points, as in
``scipy.ndimage.map_coordinates(order=3, mode="mirror")``): the field then has zero slope at the image border, which
matches the mirrored padding of the paper. A cubic B-spline is C², so the field has no kinks between control points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.transforms import RandomizableTransform

from monai_unet.transforms.grid_sampling import sample_on_grid
from monai_unet.transforms.spatial_meta import image_spacing, with_moved_affine
from monai_unet.transforms.spline_field import interpolation_basis, rotation_matrix, unfolding_scale

__all__ = ["RandElasticGrid"]

_MODES = ("bilinear", "nearest", "bicubic")
_PADDING_MODES = ("reflection", "border", "zeros")


def _as_sequence(value: float | Sequence[float], n: int, name: str) -> tuple[float, ...]:
    if isinstance(value, (int, float)):
        return (float(value),) * n
    value = tuple(float(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name} needs one value or {n} values (one per spatial axis), got {value}")
    return value


class RandElasticGrid(RandomizableTransform):
    """Random elastic deformation on a coarse control grid (the paper's augmentation), optionally with rotation,
    zoom and flips, sampled in one pass.

    Each draw puts a random displacement vector, N(0, ``sigma``²) per component, on every point of a grid of
    ``num_control_points`` per axis spanning the image corner to corner; the dense displacement field is the
    interpolating cubic B-spline through them (it equals the drawn displacement at each control point). Output voxel
    ``p`` then reads the input at ``q = c + A (p + o - c) + u(p + o)`` (input voxel coordinates): ``c`` the centre
    of the input, ``o`` the offset of the centred output crop, ``A`` the affine part (flip, then zoom, then
    rotation) and ``u`` the elastic field. The whole map is one ``grid_sample`` per interpolation mode, on the
    tensor's device.

    Folding: the field is smooth when ``sigma`` is small against the control spacing ``(S - 1) / (n - 1)``; large
    displacements against it (large ``sigma``, many control points on a small image) fold the image onto itself
    (negative Jacobian determinant). Even the defaults fold now and then on small images: on 128³ with σ = 10 voxels
    and 3 points (control spacing 63.5 voxels) about 7% of raw draws fold somewhere, 1% in 2D on 128². The fold
    guard (``min_jacobian``) therefore shrinks any draw whose Jacobian determinant, relative to the affine part,
    would drop below ``min_jacobian`` somewhere in the image (all its control displacements scaled by one factor):
    such draws keep their direction but not their full size. The draws that pass (93% in 3D at the defaults) are
    unchanged. Tested: no folding over 100 default draws in 2D and 3D.

    Args:
        prob: probability of deforming a sample; an untouched sample is only cropped to ``spatial_size``.
        num_control_points: control points per axis (one value or one per axis, ≥ 1); 3 is the paper's 3×3 grid.
        sigma: standard deviation of each displacement component (one value or one per axis), in ``sigma_units``.
        sigma_units: ``"voxels"`` (the paper's 10 pixels) or ``"mm"``: then the input must be a ``MetaTensor``
            and the displacement per axis is ``sigma / spacing`` voxels, isotropic in physical space.
        lock_borders: if True, the control points on the image border do not move (only interior ones do).
        rotate_range: rotation angles uniform in ``[-r, r]`` radians; one value (2D: in-plane; 3D: about each of
            the three array axes) or three (3D); ``None`` for no rotation. Rotation acts in voxel space.
        zoom_range: ``(low, high)``: an isotropic zoom factor uniform in this range (> 1 enlarges the content);
            ``None`` for no zoom.
        flip_axes: spatial axes (0-based) each flipped with probability 0.5; ``None`` for no flips.
        spatial_size: output spatial size (centred crop, or reflection-padded when larger); ``None`` keeps the
            input size. The sampling grid is built only for the output voxels.
        mode: interpolation for :meth:`__call__`: ``"bilinear"`` (linear in 2D and 3D), ``"bicubic"`` (cubic
            convolution as torch's 2D ``"bicubic"``, in 2D and 3D; about 2× the time of linear in 3D) or
            ``"nearest"`` (for labels: the output holds only input values).
        padding_mode: where the map reads outside the input: ``"reflection"`` (the paper's mirrored borders),
            ``"border"`` or ``"zeros"``.
        spatial_dims: 2 or 3; needed only to tell a batch ``(N, C, *spatial)`` from one sample ``(C, *spatial)``.
            ``None``: every input is one sample with ``ndim - 1`` spatial axes.
        min_jacobian: fold guard, in (0, 1): the smallest Jacobian determinant (relative to that of the affine part)
            a draw may have anywhere; a draw below it is shrunk until it is not. ``None`` keeps every raw draw.

    Shapes:
        input ``(C, *spatial)`` or, with ``spatial_dims`` set, ``(N, C, *spatial)`` (each sample its own draw);
        output ``(C, *spatial_size)`` or ``(N, C, *spatial_size)``. ``MetaTensor`` metadata is kept, and the affine is
        updated by the crop, flip, zoom and rotation (the elastic part is not an affine map and is left out).
        Nearest-mode outputs keep the input dtype; linear and cubic outputs are floating point.

    A draw that moves nothing (σ = 0, no rotation, zoom or flip, or ``prob`` not met) returns the input values
    unchanged (cropped when asked), without resampling.
    """

    def __init__(
        self,
        prob: float = 1.0,
        num_control_points: int | Sequence[int] = 3,
        sigma: float | Sequence[float] = 10.0,
        sigma_units: str = "voxels",
        lock_borders: bool = False,
        rotate_range: float | Sequence[float] | None = None,
        zoom_range: tuple[float, float] | None = None,
        flip_axes: Sequence[int] | None = None,
        spatial_size: Sequence[int] | None = None,
        mode: str = "bilinear",
        padding_mode: str = "reflection",
        spatial_dims: int | None = None,
        min_jacobian: float | None = 0.1,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        if sigma_units not in ("voxels", "mm"):
            raise ValueError(f"sigma_units must be 'voxels' or 'mm', got {sigma_units!r}")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        if spatial_dims not in (None, 2, 3):
            raise ValueError(f"spatial_dims must be 2, 3 or None, got {spatial_dims}")
        if min_jacobian is not None and not 0 < min_jacobian < 1:
            raise ValueError(f"min_jacobian must be in (0, 1) or None, got {min_jacobian}")
        if zoom_range is not None and not 0 < zoom_range[0] <= zoom_range[1]:
            raise ValueError(f"zoom_range must be (low, high) with 0 < low <= high, got {zoom_range}")
        self.num_control_points = num_control_points
        self.sigma = sigma
        self.sigma_units = sigma_units
        self.lock_borders = lock_borders
        self.rotate_range = rotate_range
        self.zoom_range = zoom_range
        self.flip_axes = tuple(flip_axes) if flip_axes is not None else ()
        self.spatial_size = tuple(int(s) for s in spatial_size) if spatial_size is not None else None
        self.mode = mode
        self.padding_mode = padding_mode
        self.spatial_dims = spatial_dims
        self.min_jacobian = min_jacobian
        # The current draw (see randomize): control displacements (voxels) and affine part, per sample.
        self._displacements = np.zeros((1, 0))
        self._linear = np.zeros((1, 0, 0))
        self._grid_buffer: torch.Tensor | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_grid_buffer"] = None  # a scratch buffer: not worth pickling to data-loader workers
        return state

    # ----------------------------------------------------------------------------------------------- randomness
    def _control_shape(self, spatial_dims: int) -> tuple[int, ...]:
        counts = self.num_control_points
        counts = (counts,) * spatial_dims if isinstance(counts, int) else tuple(int(c) for c in counts)
        if len(counts) != spatial_dims or min(counts) < 1:
            raise ValueError(f"num_control_points needs one value ≥ 1 or {spatial_dims}, got {counts}")
        return counts

    def randomize(  # type: ignore[override]
        self, spatial_shape: Sequence[int], batch_size: int = 1, spacing: Sequence[float] | None = None
    ) -> None:
        """Draw the deformation of ``batch_size`` samples of ``spatial_shape`` (uses ``self.R``).

        Args:
            spatial_shape: spatial shape of the input (the control grid spans it; the fold guard works in it).
            batch_size: samples, each with its own draw.
            spacing: voxel size per axis (mm); needed only with ``sigma_units="mm"``.
        """
        in_shape = tuple(int(s) for s in spatial_shape)
        spatial_dims = len(in_shape)
        counts = self._control_shape(spatial_dims)
        active = self.R.rand(batch_size) < self.prob
        unit = self.R.standard_normal((batch_size, spatial_dims, *counts))
        if self.lock_borders:
            interior = np.zeros(counts, dtype=bool)
            interior[tuple(slice(1, c - 1) for c in counts)] = True
            unit = unit * interior
        linear = np.tile(np.eye(spatial_dims), (batch_size, 1, 1))
        for b in range(batch_size):
            if self.flip_axes:
                flips = self.R.rand(len(self.flip_axes)) < 0.5
                for axis, flip in zip(self.flip_axes, flips, strict=True):
                    if flip:
                        linear[b, :, axis] *= -1
            if self.zoom_range is not None:
                linear[b] /= self.R.uniform(*self.zoom_range)
            if self.rotate_range is not None:
                n_angles = 1 if spatial_dims == 2 else 3
                ranges = np.asarray(_as_sequence(self.rotate_range, n_angles, "rotate_range"))
                linear[b] = rotation_matrix(self.R.uniform(-ranges, ranges)) @ linear[b]
        unit[~active] = 0.0
        linear[~active] = np.eye(spatial_dims)
        displacements = unit * self._sigma_voxels(spatial_dims, spacing).reshape(1, -1, *([1] * spatial_dims))
        if self.min_jacobian is not None:
            for b in range(batch_size):
                displacements[b] *= unfolding_scale(displacements[b], linear[b], in_shape, self.min_jacobian)
        self._displacements, self._linear = displacements, linear
        self._do_transform = bool(active.any())

    def _sigma_voxels(self, spatial_dims: int, spacing: Sequence[float] | None) -> np.ndarray:
        sigma = np.asarray(_as_sequence(self.sigma, spatial_dims, "sigma"))
        if self.sigma_units == "voxels":
            return sigma
        if spacing is None:
            raise ValueError(
                "sigma_units='mm' needs the voxel spacing: pass a MetaTensor (with its affine) or use sigma in voxels"
            )
        return sigma / np.asarray(spacing, dtype=np.float64)

    def control_displacements(self) -> np.ndarray:
        """The current draw's displacements at the control points, in input voxels.

        Returns:
            ``(N, spatial_dims, *num_control_points)``: component ``i`` moves along spatial axis ``i``.
        """
        return self._displacements.copy()

    # ------------------------------------------------------------------------------------------------- geometry
    def _output_geometry(self, in_shape: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        out_shape = tuple(in_shape) if self.spatial_size is None else self.spatial_size
        if len(out_shape) != len(in_shape):
            raise ValueError(f"spatial_size {self.spatial_size} does not match the input's spatial shape {in_shape}")
        offsets = tuple((i - o) // 2 for i, o in zip(in_shape, out_shape, strict=True))
        return out_shape, offsets

    def _affine_part(self, in_shape: Sequence[int], offsets: Sequence[int]) -> np.ndarray:
        """``(N, d + 1, d + 1)`` homogeneous maps from output voxel to input voxel (crop and affine part)."""
        d = len(in_shape)
        centre = (np.asarray(in_shape, dtype=np.float64) - 1) / 2
        maps = np.tile(np.eye(d + 1), (self._linear.shape[0], 1, 1))
        maps[:, :d, :d] = self._linear
        maps[:, :d, d] = centre + self._linear @ (np.asarray(offsets, dtype=np.float64) - centre)
        return maps

    def sampling_grid(
        self,
        spatial_shape: Sequence[int],
        normalized: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The current draw's map from output voxels to input positions.

        Args:
            spatial_shape: spatial shape of the input.
            normalized: False: input voxel coordinates, components in spatial-axis order; True: the grid
                ``grid_sample(align_corners=True)`` reads, components in reversed order (x = last axis) in [-1, 1].
            device: where to build it. dtype: its floating-point type.
            out: a tensor to write the grid into when its shape, dtype and device fit (saves a large allocation).

        Returns:
            ``(N, *spatial_size, spatial_dims)``.
        """
        in_shape = tuple(int(s) for s in spatial_shape)
        d = len(in_shape)
        if self._displacements.shape[1] != d:
            raise ValueError(f"the current draw is for {self._displacements.shape[1]}D, the input is {d}D")
        out_shape, offsets = self._output_geometry(in_shape)
        counts = self._displacements.shape[2:]
        maps = self._affine_part(in_shape, offsets)
        displacements = self._displacements
        if normalized:  # q -> 2 q / (S - 1) - 1 (a one-voxel axis reads its only voxel at 0)
            scale = np.array([2.0 / (s - 1) if s > 1 else 0.0 for s in in_shape])
            shift = np.array([-1.0 if s > 1 else 0.0 for s in in_shape])
        else:
            scale, shift = np.ones(d), np.zeros(d)
        maps[:, :d, :] *= scale[None, :, None]
        maps[:, :d, d] += shift
        displacements = displacements * scale.reshape(1, -1, *([1] * d))

        # The small factors are built in NumPy (float64): tiny tensors gain nothing from threads or a device.
        bases = [interpolation_basis(in_shape[a], out_shape[a], offsets[a], counts[a]) for a in range(d)]
        n = displacements.shape[0]
        # Contract the trailing axes of the tiny control grid: (N, n0, out1[, out2], d).
        if d == 2:
            partial = np.einsum("bcik,yk->biyc", displacements, bases[1])
        else:
            partial = np.einsum("bcijk,yj,xk->biyxc", displacements, bases[1], bases[2], optimize=True)
        # Constant plus the linear part along the trailing axes, and the slope along the first axis: (N, 1, ..., d).
        trailing = np.broadcast_to(maps[:, :d, d].reshape(n, 1, *([1] * (d - 1)), d), (n, 1, *out_shape[1:], d))
        for a in range(1, d):
            position = np.arange(out_shape[a], dtype=np.float64).reshape(
                [-1 if k == a - 1 else 1 for k in range(d - 1)]
            )
            trailing = trailing + position[None, None, ..., None] * maps[:, :d, a].reshape(n, 1, *([1] * (d - 1)), d)
        leading = np.broadcast_to(maps[:, :d, 0].reshape(n, 1, *([1] * (d - 1)), d), trailing.shape)
        stacked = np.concatenate([partial, leading, trailing], axis=1)  # (N, n0 + 2, out1[, out2], d)
        if normalized:
            stacked = stacked[..., ::-1]  # grid_sample wants (x, y[, z]) = (last axis, ..., first axis)
        position = np.arange(out_shape[0], dtype=np.float64)[:, None]
        first = torch.as_tensor(np.concatenate([bases[0], position, np.ones_like(position)], axis=1), dtype=dtype)
        stacked_t = torch.as_tensor(np.ascontiguousarray(stacked), dtype=dtype).to(device)
        first = first.to(device)
        # One matrix product along the first axis writes the whole grid, already in grid_sample's layout.
        if out is None or out.shape != (n, *out_shape, d) or out.dtype != dtype or out.device != first.device:
            out = torch.empty((n, *out_shape, d), dtype=dtype, device=device)
        torch.matmul(first, stacked_t.reshape(n, counts[0] + 2, -1), out=out.view(n, out_shape[0], -1))
        return out

    # ---------------------------------------------------------------------------------------------- application
    def __call__(  # type: ignore[override]
        self, img: torch.Tensor, mode: str | None = None, padding_mode: str | None = None, randomize: bool = True
    ) -> torch.Tensor:
        """Deform ``img`` (``(C, *spatial)``, or ``(N, C, *spatial)`` with ``spatial_dims`` set).

        Args:
            img: the image or label; a ``MetaTensor`` keeps its metadata.
            mode: overrides ``self.mode`` for this call.
            padding_mode: overrides ``self.padding_mode`` for this call.
            randomize: False re-applies the current draw (e.g. to a second image).
        """
        spatial_dims, batched = self.layout(img)
        if randomize:
            self.randomize(img.shape[-spatial_dims:], img.shape[0] if batched else 1, image_spacing(img, spatial_dims))
        return self.apply([img], [mode or self.mode], padding_mode)[0]

    @property
    def do_transform(self) -> bool:
        """Whether the last :meth:`randomize` chose to deform (``prob``)."""
        return self._do_transform

    def layout(self, img: torch.Tensor) -> tuple[int, bool]:
        """(spatial dims, batched) of ``img``: ``(C, *spatial)`` or ``(N, C, *spatial)``."""
        spatial_dims = self.spatial_dims or img.ndim - 1
        if img.ndim not in (spatial_dims + 1, spatial_dims + 2) or spatial_dims not in (2, 3):
            raise ValueError(
                f"expected (C, *spatial) or (N, C, *spatial) with 2 or 3 spatial axes, got shape {tuple(img.shape)}"
            )
        return spatial_dims, img.ndim == spatial_dims + 2

    def apply(
        self, images: Sequence[torch.Tensor], modes: Sequence[str], padding_mode: str | None = None
    ) -> list[torch.Tensor]:
        """Apply the current draw to several tensors of the same spatial shape (image and labels of one sample).

        Tensors sharing an interpolation mode are resampled together (see ``grid_sampling.sample_on_grid``).

        Args:
            images: tensors, each ``(C_k, *spatial)`` or, for a batch, ``(N, C_k, *spatial)``.
            modes: interpolation mode per tensor (see ``mode``).
            padding_mode: overrides ``self.padding_mode``.

        Returns:
            the deformed tensors, in order.
        """
        padding_mode = padding_mode or self.padding_mode
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        spatial_dims, batched = self.layout(images[0])
        in_shape = tuple(images[0].shape[-spatial_dims:])
        for img, mode in zip(images, modes, strict=True):
            if tuple(img.shape[-spatial_dims:]) != in_shape or img.ndim != images[0].ndim:
                raise ValueError(f"all inputs must share one spatial shape, got {tuple(img.shape)} and {in_shape}")
            if mode not in _MODES:
                raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        batch = images[0].shape[0] if batched else 1
        if self._displacements.shape[:2] != (batch, spatial_dims):
            raise ValueError(
                f"the current draw is for {self._displacements.shape[0]} sample(s) in "
                f"{self._displacements.shape[1]}D; call randomize({list(in_shape)}, {batch}) first"
            )
        out_shape, offsets = self._output_geometry(in_shape)
        maps = self._affine_part(in_shape, offsets)
        moves = bool(np.any(self._displacements != 0)) or not np.array_equal(
            self._linear, np.broadcast_to(np.eye(spatial_dims), self._linear.shape)
        )
        if not moves and all(o <= i for o, i in zip(out_shape, in_shape, strict=True)):
            crop = (..., *(slice(off, off + size) for off, size in zip(offsets, out_shape, strict=True)))
            return [with_moved_affine(torch.as_tensor(img)[crop].clone(), img, maps) for img in images]

        device = images[0].device
        plain = [torch.as_tensor(img) if batched else torch.as_tensor(img).unsqueeze(0) for img in images]
        float_dtype = torch.float64 if any(p.dtype == torch.float64 for p in plain) else torch.float32
        # The grid buffer is reused from call to call: fresh large allocations cost page faults (~40% of the grid).
        grid = self.sampling_grid(in_shape, normalized=True, device=device, dtype=float_dtype, out=self._grid_buffer)
        self._grid_buffer = grid
        outputs: list[torch.Tensor | None] = [None] * len(images)
        for mode in dict.fromkeys(modes):
            members = [k for k, m in enumerate(modes) if m == mode]
            # Reflection padding folds the grid into range in place, once: folding is idempotent.
            sampled = sample_on_grid([plain[k] for k in members], grid, mode, padding_mode)
            for k, part in zip(members, sampled, strict=True):
                outputs[k] = with_moved_affine(part if batched else part[0], images[k], maps)
        return [o for o in outputs if o is not None]
