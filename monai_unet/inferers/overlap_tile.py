"""Overlap-tile inference for images of any size (Ronneberger et al. 2015, Fig. 2) and blended sliding windows.

Policy, in one place:

- **Valid-padding U-Net** (``network.padding == "valid"``): the paper's overlap-tile strategy. Each input tile is its
  output tile grown by the network's margin; output tiles abut (their step is a multiple of the pooling factor, so
  the tiles see the same pooling grid as a whole-image pass); the image is extended by mirroring at its border.
  The tiled prediction equals one forward pass over the mirror-extended whole image. ``overlap`` and ``mode`` do
  not apply: there is nothing to blend.
- **Same-padding network** (our U-Net with ``padding="same"``, or any other network, e.g. MONAI's ``UNet``, whose
  output has its input's shape): a sliding window at MONAI's positions, blended with constant or Gaussian weights.
  With the same ``roi_size``, ``overlap`` and ``mode`` the result equals ``monai.inferers.sliding_window_inference``.
- **Memory**: tiles are visited in slab order along ``slab_axis``; a rolling window one tile wide holds the blended
  sums, and each slab is finalised (divided by its weights and turned into logits, probabilities or labels) as soon
  as no later tile can reach it. No whole-volume float accumulator or count map is ever allocated.
- **Speed** (``fast=True``, the default): the network is copied with BatchNorm folded into the convolutions, run in
  channels-last layout under ``torch.inference_mode`` and, where the hardware supports bf16 and ``strict_fp32`` is
  off, bf16 autocast (see :mod:`monai_unet.inferers.fast_path`). The Gaussian map is computed once per tile shape.
- **Skipping background**: with a foreground mask, bounding box or intensity threshold, tiles whose kept output
  region holds no foreground are not run; voxels that no run tile covers get class 0 (see
  :data:`monai_unet.inferers.slab_output.BACKGROUND_LOGIT`).
"""

from __future__ import annotations

import itertools
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from monai.data import MetaTensor
from monai.inferers import Inferer
from torch import nn

from monai_unet.inferers.fast_path import PreparedNetwork, prepare_network
from monai_unet.inferers.slab_output import OUTPUTS, SlabAccumulator, SlabSinks
from monai_unet.inferers.tiling import (
    AxisTiling,
    axis_geometries,
    gaussian_importance_map,
    is_valid_unet,
    nearest_valid_size,
    overlap_tile_axis,
    probe_shape,
    read_tile,
    sliding_window_axis,
)

__all__ = ["OverlapTileInferer", "TiledPrediction"]

logger = logging.getLogger(__name__)


@dataclass
class TiledPrediction:
    """What :meth:`OverlapTileInferer.predict` returns.

    Attributes:
        output: ``(N, C, *spatial)`` float logits or probabilities, or ``(N, 1, *spatial)`` uint8/uint16 labels;
            a ``MetaTensor`` with the input's metadata when the input was one.
        probabilities: ``(N, C, *spatial)`` float16 probabilities kept alongside labels, or ``None``.
        probabilities_file: the ``.npy`` file behind ``probabilities`` when it is memory-mapped (the caller
            deletes it), else ``None``.
    """

    output: torch.Tensor
    probabilities: torch.Tensor | None = None
    probabilities_file: Path | None = None


class OverlapTileInferer(Inferer):
    """Tiled inference: exact overlap-tile for valid U-Nets, blended sliding window for same-padding networks.

    Called as ``inferer(inputs, network)`` like MONAI's inferers (usable by ``_target_`` in bundle configs).

    Args:
        roi_size: input tile size (voxels), one per spatial axis or one int for all. For our U-Net it is corrected
            to the nearest valid size (logged). For a valid U-Net the tile is also shrunk to what the image needs.
            Larger tiles mean fewer, faster passes and more memory per pass.
        sw_batch_size: tiles per network call (each tile holds all N images of the batch).
        overlap: fraction of a sliding window shared with its neighbour along each axis, in ``[0, 1)`` (same
            padding only). 0.5 halves the step and costs ~4× (2D) or ~8× (3D) the passes of 0.
        mode: ``"constant"`` or ``"gaussian"`` blending weights (same padding only).
        sigma_scale: Gaussian standard deviation as a fraction of the tile size.
        padding_mode: how the image is extended beyond its border: ``"reflect"`` (mirroring, the paper; the
            default for valid U-Nets) or ``"constant"`` (``cval``; the default for same-padding networks, as in
            MONAI, where it only pads images smaller than the tile).
        cval: fill value for ``padding_mode="constant"``.
        output: ``"logits"`` (blended network output), ``"probabilities"`` (softmax over channels, or sigmoid for
            one channel) or ``"labels"`` (argmax, or ``logit > 0`` for one channel; uint8, uint16 above 256
            classes; the memory-bounded path).
        output_dtype: float type of logits/probabilities (e.g. ``torch.float16`` halves their memory).
        keep_probabilities: with ``output="labels"``, also keep probabilities: ``"float16"`` (in memory) or
            ``"memmap"`` (float16 in a memory-mapped ``.npy`` under ``memmap_dir``); see :meth:`predict`.
        memmap_dir: folder for the memory-mapped probabilities (the system temporary folder when ``None``).
        mirror_axes: spatial axes (0-based) for test-time mirroring: the prediction is averaged over every
            combination of flips of these axes (2^k passes).
        device: device the network runs on (tiles are moved there, predictions come back to the input's device);
            the network's own device when ``None``.
        progress: show a tqdm progress bar over the network calls.
        foreground_threshold: skip tiles where no input voxel exceeds this intensity (e.g. -500 HU for air around
            a CT body); ``None`` runs every tile.
        slab_axis: spatial axis (0-based or negative) along which slabs are finalised; the longest axis of the
            image keeps the rolling window smallest.
        fast: BatchNorm folding, channels-last layout and bf16 autocast where supported (see ``strict_fp32``).
        strict_fp32: keep everything in float32 (no bf16 autocast), for exact comparisons.
        backend: ``"torch"`` or ``"onnxruntime"`` (the ``onnx`` extra: the network is exported once per tile shape
            and run by ONNX Runtime on the CPU in float32; ``fast``, ``strict_fp32`` and ``device`` do not apply).
    """

    def __init__(
        self,
        roi_size: Sequence[int] | int,
        sw_batch_size: int = 1,
        overlap: Sequence[float] | float = 0.25,
        mode: str = "constant",
        sigma_scale: Sequence[float] | float = 0.125,
        padding_mode: str | None = None,
        cval: float = 0.0,
        output: str = "logits",
        output_dtype: torch.dtype = torch.float32,
        keep_probabilities: str | None = None,
        memmap_dir: str | Path | None = None,
        mirror_axes: Sequence[int] = (),
        device: torch.device | str | None = None,
        progress: bool = False,
        foreground_threshold: float | None = None,
        slab_axis: int = -1,
        fast: bool = True,
        strict_fp32: bool = False,
        backend: str = "torch",
    ) -> None:
        super().__init__()
        if sw_batch_size < 1:
            raise ValueError(f"sw_batch_size must be at least 1, got {sw_batch_size}.")
        if mode not in ("constant", "gaussian"):
            raise ValueError(f"mode must be 'constant' or 'gaussian', got {mode!r}.")
        if padding_mode not in (None, "reflect", "constant"):
            raise ValueError(f"padding_mode must be None, 'reflect' or 'constant', got {padding_mode!r}.")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}.")
        if backend not in ("torch", "onnxruntime"):
            raise ValueError(f"backend must be 'torch' or 'onnxruntime', got {backend!r}.")
        if keep_probabilities is not None and output != "labels":
            raise ValueError("keep_probabilities needs output='labels' (other outputs are already full arrays).")
        self.roi_size = roi_size
        self.sw_batch_size = int(sw_batch_size)
        self.overlap = overlap
        self.mode = mode
        self.sigma_scale = sigma_scale
        self.padding_mode = padding_mode
        self.cval = float(cval)
        self.output = output
        self.output_dtype = output_dtype
        self.keep_probabilities = keep_probabilities
        self.memmap_dir = memmap_dir
        self.mirror_axes = tuple(int(a) for a in mirror_axes)
        self.device = None if device is None else torch.device(device)
        self.progress = progress
        self.foreground_threshold = foreground_threshold
        self.slab_axis = int(slab_axis)
        self.fast = fast
        self.strict_fp32 = strict_fp32
        self.backend = backend
        self._prepared: tuple[Any, tuple, PreparedNetwork] | None = None

    # ------------------------------------------------------------------------------------------------------ public
    def __call__(self, inputs: torch.Tensor, network: nn.Module, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The prediction for ``inputs`` ``(N, C_in, *spatial)``; keywords as in :meth:`predict`."""
        return self.predict(inputs, network, *args, **kwargs).output

    def predict(
        self,
        inputs: torch.Tensor,
        network: nn.Module,
        foreground_mask: torch.Tensor | None = None,
        bounding_box: Sequence[tuple[int, int]] | None = None,
    ) -> TiledPrediction:
        """Tiled prediction over ``inputs``.

        Args:
            inputs: ``(N, C_in, *spatial)`` image batch (2D or 3D), any size; a ``MetaTensor`` keeps its metadata.
            network: the network (our ``UNet`` or any module mapping a tile to logits of the tile's shape).
            foreground_mask: optional ``(*spatial)``, ``(1, *spatial)`` or ``(N, 1, *spatial)`` mask; tiles whose kept
                output region holds no nonzero voxel are skipped.
            bounding_box: optional ``(start, stop)`` per spatial axis (voxels); tiles outside it are skipped.

        Returns:
            the output (and kept probabilities) on the input's device, covering the input's grid.
        """
        if isinstance(network, nn.parallel.DistributedDataParallel | nn.DataParallel):
            network = network.module  # inference needs no gradient synchronisation; the U-Net's geometry is inside
        image = inputs.as_tensor() if isinstance(inputs, MetaTensor) else inputs
        spatial_dims = image.dim() - 2
        if spatial_dims not in (2, 3):
            raise ValueError(f"expected inputs of shape (N, C, H, W[, D]), got {tuple(image.shape)}.")
        if not image.is_floating_point():
            image = image.float()
        spatial = tuple(image.shape[2:])
        tilings = self._tilings(network, spatial)
        axis = self.slab_axis % spatial_dims
        skip = self._skip_test(image, tilings, foreground_mask, bounding_box)
        positions = sorted(itertools.product(*(t.starts for t in tilings)), key=lambda p: p[axis])
        positions = [p for p in positions if not skip(p)]
        padding_mode = self.padding_mode or ("reflect" if is_valid_unet(network) else "constant")

        def tile(position: tuple[int, ...]) -> torch.Tensor:
            intervals = [t.input_interval(s) for t, s in zip(tilings, position, strict=True)]
            return read_tile(image, intervals, padding_mode, self.cval)

        canvas = tuple(t.canvas_size for t in tilings)
        kept = tuple(t.kept_tile for t in tilings)
        weight = None
        if self.mode == "gaussian" and not is_valid_unet(network):
            weight = gaussian_importance_map(kept, self._per_axis(self.sigma_scale, spatial_dims), image.device)
        accumulator: SlabAccumulator | None = None
        if positions:
            predictor = self._prepare(network, tile(positions[0])[:1], tuple(t.input_tile for t in tilings))
        batches = [positions[i : i + self.sw_batch_size] for i in range(0, len(positions), self.sw_batch_size)]
        with torch.inference_mode():
            for batch in self._progress(batches):
                predictions = self._run(predictor, torch.cat([tile(p) for p in batch]), kept)
                for position, prediction in zip(batch, predictions.split(image.shape[0]), strict=True):
                    if accumulator is None:
                        accumulator = self._accumulator(image, prediction.shape[1], canvas, axis, kept[axis])
                    accumulator.advance(position[axis])
                    accumulator.add(prediction, position, weight)
            if accumulator is None:  # every tile skipped: all background
                classes = getattr(network, "out_channels", 2)
                accumulator = self._accumulator(image, classes, canvas, axis, kept[axis])
            sinks = accumulator.finish()
        crop = tuple(slice(t.image_offset, t.image_offset + t.image_size) for t in tilings)
        output = self._crop(sinks.main, crop)
        probabilities = None
        if sinks.probabilities is not None:  # a view: a memory-mapped store stays memory-mapped
            probabilities = sinks.probabilities[(slice(None), slice(None), *crop)]
        if isinstance(inputs, MetaTensor):
            output = MetaTensor(output).copy_meta_from(inputs, copy_attr=False)
        return TiledPrediction(output, probabilities, sinks.probabilities_file)

    # ----------------------------------------------------------------------------------------------------- tiling
    @staticmethod
    def _per_axis(value: Sequence[float] | float, n: int) -> tuple:
        values = (value,) * n if isinstance(value, (int, float)) else tuple(value)
        if len(values) != n:
            raise ValueError(f"expected one value or {n} values, got {value}.")
        return values

    def _tilings(self, network: nn.Module, spatial: tuple[int, ...]) -> list[AxisTiling]:
        roi = tuple(int(r) for r in self._per_axis(self.roi_size, len(spatial)))
        if min(roi) < 1:
            raise ValueError(f"roi_size must be positive, got {self.roi_size}.")
        geometries = axis_geometries(network, len(spatial))
        if geometries is not None:
            corrected = tuple(nearest_valid_size(g, r) for g, r in zip(geometries, roi, strict=True))
            if corrected != roi:
                logger.info("roi_size %s is not valid for this U-Net; using the nearest valid size %s", roi, corrected)
            roi = corrected
        if not is_valid_unet(network):
            overlap = self._per_axis(self.overlap, len(spatial))
            return [sliding_window_axis(s, r, o) for s, r, o in zip(spatial, roi, overlap, strict=True)]
        margin = int(network.margin)
        tilings = []
        for size, r, geometry in zip(spatial, roi, geometries, strict=True):
            needed = geometry.valid_size_at_least(size + 2 * margin)  # one tile covering the whole axis
            tile_in = min(r, needed)
            tile_out = geometry.output_size(tile_in)
            tilings.append(overlap_tile_axis(size, tile_in, tile_out, margin, geometry.divisor))
        return tilings

    def _skip_test(
        self,
        image: torch.Tensor,
        tilings: list[AxisTiling],
        foreground_mask: torch.Tensor | None,
        bounding_box: Sequence[tuple[int, int]] | None,
    ):
        """A predicate on tile positions: ``True`` when the tile's kept region holds no foreground."""
        spatial = image.shape[2:]
        mask = None
        if foreground_mask is not None:
            mask = torch.as_tensor(foreground_mask, device=image.device).bool()
            while mask.dim() > len(spatial):
                mask = mask.any(dim=0)
            if tuple(mask.shape) != tuple(spatial):
                raise ValueError(f"foreground_mask has spatial shape {tuple(mask.shape)}, the image {tuple(spatial)}.")
        if self.foreground_threshold is not None:
            above = (image > self.foreground_threshold).any(dim=0).any(dim=0)
            mask = above if mask is None else mask & above
        box = None
        if bounding_box is not None:
            box = [(int(a), int(b)) for a, b in bounding_box]
            if len(box) != len(spatial):
                raise ValueError(f"bounding_box needs one (start, stop) per spatial axis, got {bounding_box}.")

        def region(position: tuple[int, ...]) -> list[tuple[int, int]]:
            return [
                (max(s - t.image_offset, 0), min(s - t.image_offset + t.kept_tile, t.image_size))
                for t, s in zip(tilings, position, strict=True)
            ]

        def skip(position: tuple[int, ...]) -> bool:
            r = region(position)
            if box is not None and any(b >= hi or e <= lo for (b, e), (lo, hi) in zip(r, box, strict=True)):
                return True
            if mask is not None:
                return not bool(mask[tuple(slice(b, e) for b, e in r)].any())
            return False

        return skip

    # ---------------------------------------------------------------------------------------------------- running
    def _prepare(self, network: nn.Module, example: torch.Tensor, tile_shape: tuple[int, ...]) -> PreparedNetwork:
        """The prepared network, reused while the network's weights are unchanged (tensor version counters)."""
        try:
            state = tuple(t._version for t in itertools.chain(network.parameters(), network.buffers()))
        except RuntimeError:  # tensors made under inference_mode have no version counter: do not cache
            state = None
        key = (self.device, self.fast, self.strict_fp32, self.backend, tile_shape, network.training, state)
        if self._prepared is not None and state is not None:
            ref, cached_key, prepared = self._prepared
            if ref() is network and cached_key == key:
                return prepared
        prepared = None
        if self.backend == "torch":  # BatchNorm folding observes one forward pass: a small tile is enough
            try:
                probe = example[(slice(None), slice(None), *(slice(0, n) for n in probe_shape(network, tile_shape)))]
                prepared = prepare_network(network, probe, self.device, self.fast, self.strict_fp32)
            except (RuntimeError, ValueError):  # a network that rejects the small tile: use the real one
                prepared = None
        if prepared is None:
            prepared = prepare_network(network, example, self.device, self.fast, self.strict_fp32, self.backend)
        self._prepared = (weakref.ref(network), key, prepared)
        return prepared

    def _run(self, predictor: PreparedNetwork, tiles: torch.Tensor, kept: tuple[int, ...]) -> torch.Tensor:
        """Predictions ``(B, C, *kept)`` for input tiles ``(B, C_in, *tile)``, averaged over the mirror flips."""
        flips = [
            dims
            for k in range(len(self.mirror_axes) + 1)
            for dims in itertools.combinations([a + 2 for a in self.mirror_axes], k)
        ]
        total = None
        for dims in flips:
            x = tiles.flip(dims) if dims else tiles
            y = predictor(x)
            y = y.flip(dims) if dims else y
            total = y if total is None else total + y
        prediction = total / len(flips) if len(flips) > 1 else total
        if prediction.dim() != tiles.dim() or any(o < k for o, k in zip(prediction.shape[2:], kept, strict=True)):
            raise ValueError(
                f"the network maps a tile {tuple(tiles.shape)} to {tuple(prediction.shape)}; the inferer needs an "
                f"output of at least {kept} voxels (a same-padding network returns its input's spatial shape)."
            )
        return prediction[(slice(None), slice(None), *(slice(0, k) for k in kept))]

    def _accumulator(
        self, image: torch.Tensor, classes: int, canvas: tuple[int, ...], axis: int, width: int
    ) -> SlabAccumulator:
        sinks = SlabSinks.allocate(
            image.shape[0],
            classes,
            canvas,
            self.output,
            self.output_dtype,
            self.keep_probabilities,
            self.memmap_dir,
        )
        return SlabAccumulator(image.shape[0], classes, canvas, axis, width, sinks, device=image.device)

    def _progress(self, batches: list):
        if not self.progress:
            return batches
        from tqdm import tqdm

        return tqdm(batches, desc="overlap-tile", unit="batch")

    @staticmethod
    def _crop(array: torch.Tensor, crop: tuple[slice, ...]) -> torch.Tensor:
        if all(s.start == 0 and s.stop == n for s, n in zip(crop, array.shape[2:], strict=True)):
            return array
        return array[(slice(None), slice(None), *crop)].clone()
