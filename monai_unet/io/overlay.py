"""Quick-look PNG overlays: the segmentation tinted over the image, for a glance without a viewer."""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_unet.io.atomic import atomic_path
from monai_unet.io.naming import output_name
from monai_unet.io.segments import DEFAULT_PALETTE

__all__ = ["SaveOverlayd", "overlay_rgb"]


def _as_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def overlay_rgb(
    image: np.ndarray, labels: np.ndarray, colors: Mapping[int, Sequence[float]] | None = None, alpha: float = 0.45
) -> np.ndarray:
    """An RGB uint8 picture of a 2D ``image`` (H, W) with ``labels`` (H, W) tinted on top.

    The grey values are windowed to their 1st–99th percentile. Label value ``v > 0`` is drawn in ``colors[v]``
    (RGB in [0, 1]) or the default palette, blended with weight ``alpha``.
    """
    image = image.astype(np.float32)
    low, high = np.percentile(image, (1, 99)) if image.size else (0.0, 1.0)
    grey = np.clip((image - low) / max(high - low, 1e-6), 0, 1)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    for value in np.unique(labels):
        if value == 0:
            continue
        color = (colors or {}).get(int(value), DEFAULT_PALETTE[(int(value) - 1) % len(DEFAULT_PALETTE)])
        mask = labels == value
        rgb[mask] = (1 - alpha) * rgb[mask] + alpha * np.asarray(color, dtype=np.float32)
    return (rgb * 255 + 0.5).astype(np.uint8)


def _slices_to_show(labels: np.ndarray, count: int) -> list[int]:
    """Axial (last-axis) slice indices: spread over the labelled extent, or over the volume when nothing is."""
    occupied = np.flatnonzero(labels.reshape(-1, labels.shape[-1]).any(axis=0))
    low, high = (occupied[0], occupied[-1]) if occupied.size else (0, labels.shape[-1] - 1)
    return sorted({int(np.rint(v)) for v in np.linspace(low, high, count + 2)[1:-1]})


class SaveOverlayd(MapTransform):
    """Write ``<output_dir>/<name>_overlay.png``: the prediction under ``label_key`` tinted over ``keys``' image.

    2D images give one picture; 3D volumes give ``num_slices`` axial slices (last axis, through the labelled
    extent) side by side. Only the first image channel is shown. Written atomically. Files are named after the
    image's ``filename_or_obj`` (the folder's name for DICOM).

    Args:
        keys: the image key (one).
        label_key: the label map key (integer labels, channel-first ``(1, *spatial)``).
        output_dir: folder for the PNGs (created if missing).
        colors: label value → RGB in [0, 1]; default palette otherwise.
        num_slices: axial slices shown for a 3D volume.
        name_key: optional data key holding the case name (see :class:`~monai_unet.io.SavePredictiond`).
    """

    def __init__(
        self,
        keys: KeysCollection,
        label_key: str = "pred",
        output_dir: str | os.PathLike = ".",
        colors: Mapping[int | str, Sequence[float]] | None = None,
        num_slices: int = 3,
        name_key: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.label_key = label_key
        self.output_dir = Path(output_dir)
        self.colors = {int(k): v for k, v in (colors or {}).items()}
        self.num_slices = num_slices
        self.name_key = name_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            image, labels = _as_numpy(d[key])[0], _as_numpy(d[self.label_key])[0]
            if image.shape != labels.shape:
                raise ValueError(
                    f"overlay: image {image.shape} and labels {labels.shape} differ; place SaveOverlayd where both "
                    "are on the same grid"
                )
            if image.ndim == 3:
                picks = _slices_to_show(labels, self.num_slices)
                tiles = [overlay_rgb(image[..., z], labels[..., z], self.colors) for z in picks]
                picture = np.concatenate(tiles, axis=0)
            else:
                picture = overlay_rgb(image, labels, self.colors)
            # MONAI arrays are (x, y): transpose to rows = y for a picture in the usual orientation.
            picture = np.ascontiguousarray(picture.transpose(1, 0, 2))
            name = str(d[self.name_key]) if self.name_key is not None else output_name(d[key].meta)
            target = self.output_dir / f"{name}_overlay.png"
            with atomic_path(target, suffix=".png") as tmp:
                sitk.WriteImage(sitk.GetImageFromArray(picture, isVector=True), str(tmp))
        return d
