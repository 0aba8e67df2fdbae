"""Label maps saved as pictures the way 2D sets often ship them: a grey mask stored as RGB (or RGBA), and masks saved
as JPEG, whose lossy compression leaves values between the classes along every edge (Kvasir-SEG's polyp masks are
both). :func:`picture_label` turns such a file into the one integer map the label should have been; the planner
uses it when it measures the labels and the planned configs when they load them, so both read the same classes.

- Colour: the colour channels must agree (exactly for a lossless file, within :data:`LOSSY_CHANNEL_SPREAD` grey
  levels for JPEG); their mean is the grey level. A colour-coded class map (red for one class, green for another)
  is refused: which colour means which value is not in the file. An alpha channel is ignored.
- Lossy: every value is replaced by the nearest declared label value (for 0 and 255, a threshold at 127.5).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform

__all__ = ["LOSSY_CHANNEL_SPREAD", "PictureLabel", "PictureLabeld", "picture_label"]

#: Largest difference between the colour channels of one JPEG label pixel still read as grey (of 255 levels).
LOSSY_CHANNEL_SPREAD = 32


def picture_label(label: np.ndarray, values: Sequence[float], lossy: bool) -> np.ndarray:
    """The one label map a label picture holds.

    Args:
        label: the file's values, shape ``(C, *spatial)`` with C = 1 (grey), 3 (RGB) or 4 (RGBA).
        values: the declared label values (for ``lossy``: each value is moved to the nearest of them).
        lossy: the file was saved with lossy compression (JPEG).

    Returns:
        Shape ``(1, *spatial)``: ``label``'s values and type where not ``lossy`` (a float label stays float, for the
        planner to refuse non-integer values), else the declared values in ``label``'s integer type (int64 for a
        float input).

    Raises:
        ValueError: colour channels that differ (a colour-coded map), or a channel count other than 1, 3 or 4.
    """
    if label.shape[0] not in (1, 3, 4):
        raise ValueError(f"a label picture has 1, 3 or 4 channels, this one {label.shape[0]}")
    grey = label[:1]
    if label.shape[0] > 1:
        colours = label[:3].astype(np.int32)
        spread = int((colours.max(axis=0) - colours.min(axis=0)).max())
        if spread > (LOSSY_CHANNEL_SPREAD if lossy else 0):
            raise ValueError(
                f"its colour channels differ (by up to {spread} levels), so it is a colour-coded map, not a grey one; "
                "save each label as a single-channel (greyscale) picture holding one value per class"
            )
        grey = np.rint(colours.mean(axis=0, keepdims=True)) if lossy else label[:1]
    if lossy:
        declared = np.array(sorted(values), dtype=np.float64)
        between = (declared[1:] + declared[:-1]) / 2.0  # a value exactly between two classes goes to the upper
        snapped = declared[np.searchsorted(between, grey, side="right")]
        return snapped.astype(label.dtype if label.dtype.kind in "iu" else np.int64)
    return np.asarray(grey)


class PictureLabel(Transform):
    """:func:`picture_label` as a transform on a channel-first label (numpy, tensor or ``MetaTensor``, whose meta is
    kept); the error names the file where the meta knows it.

    Args:
        values: the declared label values (flat: every value a class is made of).
        lossy: snap every value to the nearest of ``values`` (JPEG labels).
    """

    def __init__(self, values: Sequence[float], lossy: bool = False) -> None:
        if lossy and not values:
            raise ValueError("lossy labels need the declared label values to snap to")
        self.values = [float(v) for v in values]
        self.lossy = lossy

    def __call__(self, label: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        array = label.detach().cpu().numpy() if isinstance(label, torch.Tensor) else np.asarray(label)
        try:
            grey = picture_label(array, self.values, self.lossy)
        except ValueError as error:
            source = label.meta.get("filename_or_obj", "a label") if isinstance(label, MetaTensor) else "a label"
            raise ValueError(f"{source}: {error}") from None
        if isinstance(label, MetaTensor):
            out = MetaTensor(torch.from_numpy(grey))
            out.copy_meta_from(label)  # affine, file name, applied operations
            return out
        return torch.from_numpy(grey) if isinstance(label, torch.Tensor) else grey


class PictureLabeld(MapTransform):
    """Dictionary wrapper of :class:`PictureLabel`."""

    def __init__(
        self, keys: KeysCollection, values: Sequence[float], lossy: bool = False, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.convert = PictureLabel(values, lossy)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.convert(d[key])
        return d
