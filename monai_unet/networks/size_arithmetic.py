"""Size arithmetic of the U-Net: which input sizes fit, what comes out, and how much is lost at the border.

In valid mode (the paper's unpadded convolutions) every 3×3 convolution loses one voxel per side, so a level with
two convolutions loses 4 voxels per axis at its own resolution, and each 2×2 max pooling needs an even size. In
same mode nothing is lost and the only condition is that every pooling divides evenly: an axis pooled by 2 at k of
the steps needs a multiple of 2^k (an anisotropic network, nnU-Net style, pools its thick-slice axis fewer times).
All sizes here are per spatial axis, in voxels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["SizedNetwork", "UNetGeometry", "per_axis_table"]

_PADDINGS = ("valid", "same")
_UPSAMPLES = ("deconv", "interp")
_CONV_LOSS = 4  # two unpadded 3×3 convolutions lose 2 × 2 voxels per axis


@dataclass(frozen=True)
class UNetGeometry:
    """How one spatial axis passes through a U-Net of a given depth.

    Args:
        depth: number of resolution levels (``len(features)``), at least 2.
        padding: ``"valid"`` (the paper's unpadded convolutions) or ``"same"``.
        upsample: ``"deconv"`` (2×2 up-convolution) or ``"interp"`` (bilinear/trilinear upsampling). In valid mode
            the interpolated map is cropped by one voxel per side, because its outermost voxels are extrapolated
            (replicated) rather than computed from real neighbours; this keeps valid mode translation-exact.
        poolings: how many of the ``depth - 1`` pooling steps halve this axis (the others leave it as it is);
            ``None`` (the default) means all of them. Fewer poolings need ``padding="same"``: the valid-mode
            arithmetic assumes a 2× pooling and 3-voxel convolutions at every level. Stored resolved (an int).
    """

    depth: int
    padding: str = "valid"
    upsample: str = "deconv"
    poolings: int | None = None

    def __post_init__(self) -> None:
        if self.depth < 2:
            raise ValueError(f"A U-Net needs at least 2 levels, got depth {self.depth}.")
        if self.padding not in _PADDINGS:
            raise ValueError(f"padding must be one of {_PADDINGS}, got {self.padding!r}.")
        if self.upsample not in _UPSAMPLES:
            raise ValueError(f"upsample must be one of {_UPSAMPLES}, got {self.upsample!r}.")
        poolings = self.depth - 1 if self.poolings is None else self.poolings
        if isinstance(poolings, bool) or not isinstance(poolings, int) or not 0 <= poolings <= self.depth - 1:
            raise ValueError(
                f"poolings must be an int from 0 to depth - 1 = {self.depth - 1} (how many pooling steps halve "
                f"this axis), got {self.poolings!r}."
            )
        if self.padding == "valid" and poolings != self.depth - 1:
            raise ValueError(
                f"valid padding needs a 2× pooling of every axis at every step (poolings = depth - 1 = "
                f"{self.depth - 1}), got poolings={poolings}; use padding='same' for anisotropic pooling."
            )
        object.__setattr__(self, "poolings", poolings)  # frozen: resolve the default once, so equal axes compare equal

    @property
    def divisor(self) -> int:
        """Total down-sampling factor of this axis, 2^poolings (2^(depth-1) by default): the step between
        consecutive valid sizes, in voxels."""
        return 2**self.poolings

    @property
    def _upsample_crop(self) -> int:
        return 1 if (self.padding == "valid" and self.upsample == "interp") else 0

    def output_size(self, size: int) -> int | None:
        """Output size (voxels) for an input of ``size`` voxels, or ``None`` if the size does not fit the network."""
        if size < 1:
            return None
        if self.padding == "same":
            return size if size % self.divisor == 0 else None
        n = size
        for _ in range(self.depth - 1):  # contracting path
            n -= _CONV_LOSS
            if n < 2 or n % 2:
                return None
            n //= 2
        n -= _CONV_LOSS  # bottleneck
        if n < 1:
            return None
        for _ in range(self.depth - 1):  # expansive path
            n = 2 * n - 2 * self._upsample_crop - _CONV_LOSS
            if n < 1:
                return None
        return n

    @property
    def margin(self) -> int:
        """Voxels lost per side in valid mode (0 in same mode): ``output = input - 2 * margin`` for valid inputs.

        Each contracting level l loses 2·2^l voxels per side in input units, each expansive level the same plus
        2^l for the interpolation crop. The paper's depth-5 network loses 92 per side (572 → 388).
        """
        if self.padding == "same":
            return 0
        contracting = sum(2 * 2**level for level in range(self.depth))
        expansive = sum((2 + self._upsample_crop) * 2**level for level in range(self.depth - 1))
        return contracting + expansive

    def smallest_valid_size(self) -> int:
        """The smallest input size (voxels) that fits the network."""
        return self.valid_size_at_least(1)

    def valid_size_at_least(self, size: int) -> int:
        """The smallest valid input size ≥ ``size`` voxels."""
        n = max(int(size), 1)
        while self.output_size(n) is None:
            n += 1
        return n

    def valid_size_at_most(self, size: int) -> int | None:
        """The largest valid input size ≤ ``size`` voxels, or ``None`` if there is none."""
        for n in range(int(size), 0, -1):
            if self.output_size(n) is not None:
                return n
        return None

    def describe_misfit(self, size: int, axis: int) -> str:
        """A message for an input size that does not fit, naming the nearest valid sizes below and above."""
        below, above = self.valid_size_at_most(size), self.valid_size_at_least(size)
        if below is None:
            nearest = f"the smallest valid size is {above}. Pad the input to it"
        else:
            nearest = f"the nearest valid sizes are {below} or {above}. Pad or crop the input to one of them"
        setup = f"depth {self.depth}, {self.padding} padding"
        if self.padding == "same":
            pooled = "" if self.poolings == self.depth - 1 else f", pooled {self.poolings}× along this axis"
            setup += f"{pooled}; sizes must be multiples of {self.divisor}"
        return (
            f"input size {size} along spatial axis {axis} does not fit this U-Net ({setup}): {nearest} "
            "(UNet.valid_input_shape gives the smallest fitting shape)."
        )


@runtime_checkable
class SizedNetwork(Protocol):
    """What a network tells :class:`monai_unet.inferers.OverlapTileInferer` about its sizes. Our ``UNet``
    implements it; any network may. A network without it is tiled as a same-padding network, its probe input
    shaped by powers of two.

    Attributes:
        padding: ``"valid"`` (output smaller than input: overlap-tile with mirrored borders) or ``"same"``.
        axis_geometries: one :class:`UNetGeometry` per spatial axis (tile sizes are corrected to fit them).
    """

    padding: str
    axis_geometries: tuple[UNetGeometry, ...]

    def valid_input_shape(self, min_shape: Sequence[int] | int) -> tuple[int, ...]:
        """The smallest spatial input shape at least ``min_shape`` (voxels) that the network accepts."""
        ...


def per_axis_table(
    name: str, table: Sequence[Sequence[int]] | None, entries: str, count: int, spatial_dims: int, allowed: tuple
) -> tuple[tuple[int, ...], ...]:
    """``table`` as a tuple of ``count`` per-axis int tuples with values in ``allowed``; ``None``: ``allowed[-1]``
    everywhere. ``entries`` says what one entry is, for the error messages."""
    if table is None:
        return ((allowed[-1],) * spatial_dims,) * count
    choices = " or ".join(str(a) for a in allowed)
    expected = (
        f"{count} entries ({entries}), each a list of {spatial_dims} values (one per spatial axis), each {choices}"
    )
    if isinstance(table, str | bytes) or not isinstance(table, Sequence):
        raise ValueError(f"{name} must be a list of {expected}; got {table!r}.")
    if len(table) != count:
        raise ValueError(f"{name} needs {expected}; got {len(table)} entries: {list(table)!r}.")
    rows = []
    for i, row in enumerate(table):
        if isinstance(row, str | bytes) or not isinstance(row, Sequence) or len(row) != spatial_dims:
            raise ValueError(f"{name}[{i}] must be a list of {spatial_dims} values, each {choices}; got {row!r}.")
        values = tuple(int(v) for v in row)
        if any(v not in allowed or v != r for v, r in zip(values, row, strict=True)):
            raise ValueError(f"{name}[{i}] values must each be {choices}; got {row!r}.")
        rows.append(values)
    return tuple(rows)
