"""The segments of a label map as the segmentation formats describe them: value, name, colour and coded meaning.

:func:`segment_table` builds them from a label map and a bundle's ``label_names``, ``label_colors`` and
``terminology``; the ``.seg.nrrd`` and DICOM SEG writers (:mod:`monai_unet.io.seg_nrrd`,
:mod:`monai_unet.io.dicom.seg`) and the overlays read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from monai_unet.io.terminology import TISSUE, Terminology, parse_terminology

__all__ = ["DEFAULT_PALETTE", "MAX_LABEL", "Segment", "segment_table"]

#: Default segment colours (RGB in [0, 1]): Paul Tol's "muted" qualitative scheme, distinguishable by colour-blind
#: readers. Label value ``v`` gets ``DEFAULT_PALETTE[(v - 1) % 9]``.
DEFAULT_PALETTE: tuple[tuple[float, float, float], ...] = tuple(
    (int(h[0:2], 16) / 255, int(h[2:4], 16) / 255, int(h[4:6], 16) / 255)
    for h in ("CC6677", "332288", "DDCC77", "117733", "88CCEE", "882255", "44AA99", "999933", "AA4499")
)

#: Largest label value a written label map can hold (``uint16``).
MAX_LABEL = 65535


@dataclass(frozen=True)
class Segment:
    """One label of a label map as the segmentation formats describe it.

    Args:
        value: the integer label value in the label map (≥ 1).
        name: display name (``"Segment_<value>"`` when none was given).
        color: RGB display colour, each component in [0, 1].
        terminology: coded category, type and region (:mod:`monai_unet.io.terminology`); default "Tissue".
    """

    value: int
    name: str
    color: tuple[float, float, float]
    terminology: Terminology = TISSUE


def segment_table(
    labels: np.ndarray,
    label_names: Mapping[int | str, str] | None = None,
    colors: Mapping[int | str, Sequence[float]] | None = None,
    terminology: Mapping[int | str, Mapping] | None = None,
) -> list[Segment]:
    """The segments to describe: every label value present in ``labels`` and every value named in ``label_names``.

    Args:
        labels: the checked label map (see :func:`~monai_unet.io.writers.label_array`).
        label_names: label value → display name (keys may be strings, as in JSON bundle configs).
        colors: label value → RGB in [0, 1]; missing values take :data:`DEFAULT_PALETTE`.
        terminology: label value → coded description, the bundle's ``terminology`` table
            (:func:`~monai_unet.io.terminology.parse_terminology`); missing values are "Tissue".

    Raises:
        ValueError: a key is not an integer ≥ 1, a colour is not three numbers in [0, 1], or a malformed code.
    """
    names = {_label_key(k): str(v) for k, v in (label_names or {}).items()}
    rgb = {_label_key(k): _rgb(k, v) for k, v in (colors or {}).items()}
    codes = parse_terminology(terminology)
    flat = torch.from_numpy(labels.reshape(-1))  # a view for contiguous labels
    counts = torch.bincount(flat if labels.dtype == np.uint8 else flat.to(torch.int32))  # O(N); numpy's is 20× slower
    present = torch.nonzero(counts).flatten().numpy()
    values = sorted(set(present.tolist()) - {0} | set(names))
    return [
        Segment(
            v,
            names.get(v, f"Segment_{v}"),
            rgb.get(v, DEFAULT_PALETTE[(v - 1) % len(DEFAULT_PALETTE)]),
            codes.get(v, TISSUE),
        )
        for v in values
    ]


def _label_key(key: int | str) -> int:
    value = int(key)
    if value < 1 or value > MAX_LABEL:
        raise ValueError(f"label value {key!r} is outside [1, {MAX_LABEL}] (0 is the background and has no segment)")
    return value


def _rgb(key: int | str, color: Sequence[float]) -> tuple[float, float, float]:
    rgb = tuple(float(c) for c in color)
    if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
        raise ValueError(f"colour of label {key!r} must be three numbers in [0, 1] (RGB), got {list(color)}")
    return rgb  # type: ignore[return-value]
