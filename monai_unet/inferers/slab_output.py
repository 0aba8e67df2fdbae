"""Blend tile predictions in a rolling window along one axis and finalise each slab as soon as it is complete.

Tiles arrive sorted by their start along the *slab axis*. Once a tile starting at position ``s`` arrives, no later
tile can touch the voxels before ``s``: that slab is divided by its summed weights, turned into the requested output
(logits, probabilities or labels) and written out, and the window moves on. The blending buffer therefore spans one
tile along the slab axis instead of the whole image: for a 512×512×1000 CT, two classes and 96-voxel tiles it holds
~300 MB instead of the ~3 GB of a whole-volume float output and count map.

Voxels that no tile covered (only possible when tiles were skipped as background) receive :data:`BACKGROUND_LOGIT`
for every class but class 0, and 0 for class 0; a single-channel (sigmoid) output receives ``BACKGROUND_LOGIT``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["BACKGROUND_LOGIT", "OUTPUTS", "SlabAccumulator", "SlabSinks", "label_dtype"]

BACKGROUND_LOGIT = -1.0e4
"""Logit given to the foreground classes of voxels no tile covered: softmax 1 for class 0, label 0."""

OUTPUTS = ("logits", "probabilities", "labels")


def _activate(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities: softmax over channels, or sigmoid for a single channel."""
    return torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)


def _labels(logits: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Class index per voxel, ``(N, 1, ...)``: argmax over channels (first on ties), or ``logit > 0`` for one channel.

    One pass per class over contiguous planes: several times faster on the CPU than ``argmax(dim=1)``, which
    strides across the channel axis.
    """
    if logits.shape[1] == 1:
        return (logits > 0).to(dtype)
    best = logits[:, :1].clone()
    labels = torch.zeros(best.shape, dtype=dtype, device=logits.device)
    for c in range(1, logits.shape[1]):
        better = logits[:, c : c + 1] > best
        labels.masked_fill_(better, c)
        torch.maximum(best, logits[:, c : c + 1], out=best)
    return labels


def label_dtype(classes: int) -> torch.dtype:
    """The smallest unsigned type holding ``classes`` labels: uint8 up to 256 classes, else uint16."""
    return torch.uint8 if classes <= 256 else torch.uint16


@dataclass
class SlabSinks:
    """Where finished slabs go (canvas-sized arrays, all optional but ``main``).

    Args:
        main: ``(N, C, *canvas)`` float logits/probabilities, or ``(N, 1, *canvas)`` labels.
        output: one of :data:`OUTPUTS`, what ``main`` holds.
        probabilities: optional ``(N, C, *canvas)`` store for probabilities alongside labels (fp16 tensor or a
            tensor over a memory-mapped file).
        probabilities_file: the memory-mapped file behind ``probabilities``, when there is one.
    """

    main: torch.Tensor
    output: str
    probabilities: torch.Tensor | None = None
    probabilities_file: Path | None = None

    @classmethod
    def allocate(
        cls,
        batch: int,
        classes: int,
        canvas: tuple[int, ...],
        output: str,
        dtype: torch.dtype = torch.float32,
        keep_probabilities: str | None = None,
        memmap_dir: str | Path | None = None,
    ) -> SlabSinks:
        """Allocate the stores.

        Args:
            batch: images in the batch (N).
            classes: output channels of the network (C).
            canvas: spatial canvas shape (voxels).
            output: ``"logits"``, ``"probabilities"`` or ``"labels"``.
            dtype: float type of a logits/probabilities ``main`` store.
            keep_probabilities: with ``output="labels"``: ``None``, ``"float16"`` (an fp16 tensor in memory) or
                ``"memmap"`` (float16 in a memory-mapped file under ``memmap_dir``).
            memmap_dir: folder for the memory-mapped file (a new temporary folder inside it; the system
                temporary folder when ``None``). The file is left for the caller to delete.
        """
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}.")
        if output == "labels":
            main = torch.zeros((batch, 1, *canvas), dtype=label_dtype(classes))
        else:
            main = torch.empty((batch, classes, *canvas), dtype=dtype)
        if keep_probabilities is None:
            return cls(main, output)
        if output != "labels":
            raise ValueError("keep_probabilities applies to output='labels' (the other outputs are the full array).")
        shape = (batch, classes, *canvas)
        if keep_probabilities == "float16":
            return cls(main, output, torch.empty(shape, dtype=torch.float16))
        if keep_probabilities == "memmap":
            folder = Path(tempfile.mkdtemp(prefix="overlap_tile_", dir=memmap_dir))
            path = folder / "probabilities.float16.npy"
            array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=shape)
            return cls(main, output, torch.from_numpy(array), path)
        raise ValueError(f"keep_probabilities must be None, 'float16' or 'memmap', got {keep_probabilities!r}.")

    def write(self, logits: torch.Tensor, index: tuple[slice, ...]) -> None:
        """Store finished logits ``(N, C, *slab)`` at canvas position ``index`` (spatial slices)."""
        where = (slice(None), slice(None), *index)
        if self.output == "logits":
            self.main[where] = logits
        elif self.output == "probabilities":
            self.main[where] = _activate(logits)
        else:
            self.main[where] = _labels(logits, self.main.dtype)
        if self.probabilities is not None:
            self.probabilities[where] = _activate(logits)


class SlabAccumulator:
    """Weighted sum of tile predictions over a window that rolls along one spatial axis.

    Args:
        batch: images in the batch (N).
        classes: output channels (C).
        canvas: spatial canvas shape (voxels).
        axis: the slab axis (spatial index, 0-based).
        width: window width along ``axis`` (voxels): at least the kept tile size along it.
        sinks: where finished slabs are written.
        device: where the window lives (the canvas device).
    """

    def __init__(
        self,
        batch: int,
        classes: int,
        canvas: tuple[int, ...],
        axis: int,
        width: int,
        sinks: SlabSinks,
        device: torch.device | str = "cpu",
    ) -> None:
        self.canvas = tuple(canvas)
        self.axis = axis
        self.width = min(width, canvas[axis])
        self.sinks = sinks
        shape = list(canvas)
        shape[axis] = self.width
        self.values = torch.zeros((batch, classes, *shape), dtype=torch.float32, device=device)
        self.weights = torch.zeros((1, 1, *shape), dtype=torch.float32, device=device)
        self.low = 0  # canvas position of the window's first voxel along the axis

    def _window(self, start: int, stop: int) -> tuple[slice, ...]:
        spatial = [slice(None)] * len(self.canvas)
        spatial[self.axis] = slice(start - self.low, stop - self.low)
        return (slice(None), slice(None), *spatial)

    def advance(self, position: int) -> None:
        """Finalise every voxel before ``position`` along the slab axis (no later tile may start before it)."""
        position = min(position, self.canvas[self.axis])
        while self.low < position:
            n = min(position - self.low, self.width)
            self._finalise(n)
            self._shift(n)
            self.low += n

    def add(self, prediction: torch.Tensor, starts: tuple[int, ...], weight: torch.Tensor | None) -> None:
        """Add one tile's prediction ``(N, C, *kept)`` whose first voxel sits at canvas position ``starts``.

        Args:
            prediction: the kept part of the tile's output (float).
            starts: canvas position (voxels) per spatial axis; the tile is clipped to the canvas.
            weight: ``(*kept)`` blending weights, or ``None`` for weight 1.
        """
        if starts[self.axis] < self.low:
            raise RuntimeError(f"tile at {starts} arrived after its slab was finalised (window at {self.low}).")
        src: list[slice] = []
        dst: list[slice] = []
        for a, (s, k) in enumerate(zip(starts, prediction.shape[2:], strict=True)):
            stop = min(s + k, self.canvas[a])
            src.append(slice(0, stop - s))
            dst.append(slice(s - self.low, stop - self.low) if a == self.axis else slice(s, stop))
        if dst[self.axis].stop > self.width:
            raise RuntimeError(f"tile at {starts} reaches beyond the rolling window of width {self.width}.")
        part = prediction[(slice(None), slice(None), *src)]
        target = (slice(None), slice(None), *dst)
        if weight is None:
            self.values[target] += part
            self.weights[target] += 1.0
        else:
            w = weight[tuple(src)]
            self.values[target] += part * w
            self.weights[target] += w

    def finish(self) -> SlabSinks:
        """Finalise the rest of the canvas and return the sinks."""
        self.advance(self.canvas[self.axis])
        return self.sinks

    def _finalise(self, n: int) -> None:
        window = self._window(self.low, self.low + n)
        values, weights = self.values[window], self.weights[window]
        logits = values / weights
        uncovered = weights == 0
        if bool(uncovered.any()):
            background = torch.full((1, values.shape[1]) + (1,) * (values.dim() - 2), BACKGROUND_LOGIT)
            if values.shape[1] > 1:
                background[:, 0] = 0.0
            logits = torch.where(uncovered, background.to(logits.device), logits)
        index = [slice(None)] * len(self.canvas)
        index[self.axis] = slice(self.low, self.low + n)
        self.sinks.write(logits.to(self.sinks.main.device), tuple(index))

    def _shift(self, n: int) -> None:
        keep = self.width - n
        for buffer in (self.values, self.weights):
            if keep > 0:
                head = [slice(None)] * buffer.dim()
                tail = [slice(None)] * buffer.dim()
                head[self.axis + 2] = slice(0, keep)
                tail[self.axis + 2] = slice(n, self.width)
                buffer[tuple(head)] = buffer[tuple(tail)].clone()
            rest = [slice(None)] * buffer.dim()
            rest[self.axis + 2] = slice(keep, self.width)
            buffer[tuple(rest)] = 0.0
