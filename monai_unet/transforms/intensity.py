"""Intensity preprocessing: CT window presets (HU → [0, 1]), CT clip + z-score with dataset statistics, and MR
z-score within the foreground.

Intensity transforms change values, never geometry, so ``Invertd`` passes over them (they are not
``InvertibleTransform``); a prediction is returned to the source grid by inverting the spatial steps alone.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, ScaleIntensityRange, Transform

__all__ = ["CT_WINDOWS", "CTWindow", "CTWindowd", "ClipZScore", "ClipZScored", "ForegroundZScore", "ForegroundZScored"]

#: CT display windows as ``name: (level, width)`` in Hounsfield units (HU), the usual values listed by Radiopaedia,
#: "Windowing (CT)". The window shows HU in ``[level - width / 2, level + width / 2]``.
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "stroke": (40.0, 40.0),
    "temporal_bone": (600.0, 2800.0),
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "abdomen": (50.0, 400.0),
    "liver": (30.0, 150.0),
    "spine_soft_tissue": (50.0, 250.0),
    "bone": (400.0, 1800.0),
}


def _window(preset: str | None, level: float | None, width: float | None) -> tuple[float, float]:
    if preset is not None:
        if level is not None or width is not None:
            raise ValueError("give either a preset or level and width, not both")
        if preset not in CT_WINDOWS:
            raise ValueError(f"unknown CT window {preset!r}; presets: {', '.join(CT_WINDOWS)}")
        level, width = CT_WINDOWS[preset]
    if level is None or width is None:
        raise ValueError("give a preset name or both level and width (HU)")
    if width <= 0:
        raise ValueError(f"window width must be > 0 HU, got {width}")
    return float(level), float(width)


class CTWindow(ScaleIntensityRange):
    """Map the HU window ``[level - width/2, level + width/2]`` linearly onto ``[0, 1]``, clipping outside it.

    Args:
        preset: a name in :data:`CT_WINDOWS` (``"abdomen"``, ``"lung"``, ``"bone"``, ...), or ``None`` to give
            ``level`` and ``width``.
        level: window centre in HU.
        width: window width in HU (> 0). Narrow windows raise contrast inside and saturate everything else.

    Input: a tensor in HU of any shape (channel-first image, e.g. ``(1, H, W, D)``); output: same shape, float32.
    """

    def __init__(self, preset: str | None = None, level: float | None = None, width: float | None = None) -> None:
        self.level, self.width = _window(preset, level, width)
        super().__init__(
            a_min=self.level - self.width / 2, a_max=self.level + self.width / 2, b_min=0.0, b_max=1.0, clip=True
        )


class CTWindowd(MapTransform):
    """Dictionary wrapper of :class:`CTWindow`: window the images under ``keys`` (never the labels)."""

    def __init__(
        self,
        keys: KeysCollection,
        preset: str | None = None,
        level: float | None = None,
        width: float | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.window = CTWindow(preset, level, width)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.window(d[key])
        return d


class ForegroundZScore(Transform):
    """Z-score an MR image with the mean and standard deviation of its foreground; the background becomes 0.

    The foreground is ``mask > 0`` when a mask is given (shape of the image, or one channel broadcast over all),
    else the nonzero voxels of each channel (skull-stripped or cropped MR has an exact-zero background). Statistics
    are taken per channel. The background is set to 0 (the foreground mean), as nnU-Net does for masked
    normalisation, so the network never sees the arbitrary background value.

    Without a mask this is MONAI's ``NormalizeIntensity(nonzero=True, channel_wise=True)``, which the planner and
    the bundles use; this transform exists for a foreground given by another image (a brain mask, ``mask_key`` of
    the dictionary form), which MONAI's cannot take, and it refuses a channel without foreground, which MONAI's
    passes through unnormalised.

    Args:
        eps: added to the standard deviation, so a constant foreground gives 0 instead of dividing by zero.

    Input: ``(C, *spatial)`` float tensor (and optional mask ``(1 or C, *spatial)``); output: same shape, float32.

    Raises:
        ValueError: a channel has no foreground voxel.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        self.eps = eps

    def __call__(self, img: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = (img.as_tensor() if isinstance(img, MetaTensor) else torch.as_tensor(img)).float()
        mask = mask.as_tensor() if isinstance(mask, MetaTensor) else mask
        foreground = (x != 0) if mask is None else (torch.as_tensor(mask) > 0).expand_as(x)
        out = torch.zeros_like(x)
        for c in range(x.shape[0]):
            values = x[c][foreground[c]]
            if values.numel() == 0:
                raise ValueError(f"channel {c} has no foreground voxel to take the mean and standard deviation from")
            std, mean = torch.std_mean(values, correction=0)
            out[c] = torch.where(foreground[c], (x[c] - mean) / (std + self.eps), 0.0)
        if isinstance(img, MetaTensor):
            out = MetaTensor(out, meta=img.meta, applied_operations=img.applied_operations)
        return out


class ForegroundZScored(MapTransform):
    """Dictionary wrapper of :class:`ForegroundZScore`.

    Args:
        keys: images to normalise.
        mask_key: key of the foreground mask (e.g. a brain mask); ``None`` uses each image's nonzero voxels.
    """

    def __init__(
        self, keys: KeysCollection, mask_key: str | None = None, eps: float = 1e-8, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.zscore = ForegroundZScore(eps)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        mask = d[self.mask_key] if self.mask_key is not None else None
        for key in self.key_iterator(d):
            d[key] = self.zscore(d[key], mask)
        return d


class ClipZScore(Transform):
    """Clip each channel to fixed bounds, then z-score it with fixed statistics (CT, as nnU-Net normalises it).

    The bounds and statistics come from the whole training set (the planner's fingerprint: 0.5/99.5 percentiles,
    mean and standard deviation of the labelled foreground), so every scan is mapped the same way and Hounsfield
    units keep their meaning across scans.

    Args:
        clip: ``[[low, high], ...]`` per channel, in the image's units (HU).
        mean: per-channel mean (same units).
        std: per-channel standard deviation (> 0).

    Input: ``(C, *spatial)``; output: same shape, float32.
    """

    def __init__(self, clip: list[list[float]], mean: list[float], std: list[float]) -> None:
        if not len(clip) == len(mean) == len(std):
            raise ValueError(f"clip, mean and std need one entry per channel, got {len(clip)}, {len(mean)}, {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {std}")
        self.clip = [(float(lo), float(hi)) for lo, hi in clip]
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if img.shape[0] != len(self.mean):
            raise ValueError(f"expected {len(self.mean)} channels, got an image of shape {tuple(img.shape)}")
        out = img.float().clone() if isinstance(img, MetaTensor) else torch.as_tensor(img).float().clone()
        for c, ((low, high), mean, std) in enumerate(zip(self.clip, self.mean, self.std, strict=True)):
            out[c] = (out[c].clamp(low, high) - mean) / std
        return out


class ClipZScored(MapTransform):
    """Dictionary wrapper of :class:`ClipZScore` (images only, never labels)."""

    def __init__(
        self,
        keys: KeysCollection,
        clip: list[list[float]],
        mean: list[float],
        std: list[float],
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.transform = ClipZScore(clip, mean, std)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key])
        return d
