"""The paper's pixel-wise loss weight map (Ronneberger et al. 2015, equation 2): class balance plus a border term.

    w(x) = w_c(x) + w0 · exp(−(d1(x) + d2(x))² / (2σ²))

``d1`` and ``d2`` are the distances from ``x`` to the nearest and the second-nearest object; the border term is
large only in the narrow gaps between two touching objects, which forces the network to learn the separating borders.
``w_c`` balances the class frequencies.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import scipy.ndimage as ndi
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform

__all__ = ["BorderWeightMap", "BorderWeightMapd", "border_weight_map"]

# The border term is dropped where it is below this fraction of w0: d1 + d2 > σ √(2 ln 10⁴) ≈ 4.3 σ.
_NEGLIGIBLE = 1e-4


def border_weight_map(
    label: np.ndarray,
    w0: float = 10.0,
    sigma: float = 5.0,
    object_label: int | None = None,
    connectivity: int = 1,
    class_weights: str | Mapping[int, float] | None = "balanced",
    spacing: Sequence[float] | None = None,
) -> np.ndarray:
    """Equation 2 of the paper on one label array (2D or 3D); see :class:`BorderWeightMap` for the arguments.

    Returns:
        ``float32`` array of ``label``'s shape.
    """
    label = np.asarray(label)
    if label.dtype.kind not in "biu":
        if not np.array_equal(label, np.round(label)):
            raise ValueError(f"the label must hold integer values, got dtype {label.dtype} with fractions")
        label = label.astype(np.int64)
    if object_label is None:
        if label.min() < 0:
            raise ValueError("instance labels must be ≥ 0 (0 = background)")
        values, objects = np.unique(label, return_inverse=True)
        objects = objects.reshape(label.shape) + (0 if values[0] == 0 else 1)  # 0 stays background
        in_object = label != 0
        classes = in_object.astype(np.int64)  # background 0, objects 1
    else:
        in_object = label == object_label
        structure = ndi.generate_binary_structure(label.ndim, connectivity)
        objects, _ = ndi.label(in_object, structure=structure)
        classes = label
    weights = _class_weight_map(classes, class_weights)
    spacing_arr = np.ones(label.ndim) if spacing is None else np.asarray(spacing, dtype=np.float64)
    if len(spacing_arr) != label.ndim:
        raise ValueError(f"spacing {tuple(spacing_arr)} does not match the label's {label.ndim} axes")
    reach = sigma * math.sqrt(2.0 * math.log(1.0 / _NEGLIGIBLE))  # d2 beyond this: negligible border term
    margins = [math.ceil(reach / s) for s in spacing_arr]
    nearest = np.full(label.shape, np.inf)
    second = np.full(label.shape, np.inf)
    for index, box in enumerate(ndi.find_objects(objects), start=1):
        if box is None:
            continue
        grown = tuple(
            slice(max(b.start - m, 0), min(b.stop + m, size))
            for b, m, size in zip(box, margins, label.shape, strict=True)
        )
        # Distance to this object, exact inside the grown box (the object lies wholly inside it).
        distance = ndi.distance_transform_edt(objects[grown] != index, sampling=spacing_arr)
        d1, d2 = nearest[grown], second[grown]
        second[grown] = np.minimum(d2, np.maximum(d1, distance))
        nearest[grown] = np.minimum(d1, distance)
    gap = ~in_object & np.isfinite(second)  # the border term lives between objects, outside them
    total = nearest[gap] + second[gap]
    weights[gap] += w0 * np.exp(-(total**2) / (2.0 * sigma**2))
    return weights.astype(np.float32)


def _class_weight_map(classes: np.ndarray, class_weights: str | Mapping[int, float] | None) -> np.ndarray:
    """w_c per voxel: 1, supplied per class value, or ``"balanced"`` (N / (K · N_c), mean 1 over the image)."""
    if class_weights is None:
        return np.ones(classes.shape)
    values, inverse, counts = np.unique(classes, return_inverse=True, return_counts=True)
    if isinstance(class_weights, str):
        if class_weights != "balanced":
            raise ValueError(f"class_weights must be 'balanced', a mapping or None, got {class_weights!r}")
        per_class = classes.size / (len(values) * counts)
    else:
        missing = [int(v) for v in values if int(v) not in class_weights]
        if missing:
            raise ValueError(f"class_weights has no weight for the class value(s) {missing} found in the label")
        per_class = np.array([class_weights[int(v)] for v in values], dtype=np.float64)
    return per_class[inverse.reshape(classes.shape)]


class BorderWeightMap(Transform):
    """The paper's weight map (equation 2) from a label: class balance plus a border term between touching objects.

    Objects are the labelled instances (each distinct non-zero value, ``object_label=None``), or the connected
    components of the voxels equal to ``object_label`` in a semantic mask: for ISBI 2012 EM (255 = cell, 0 =
    membrane) ``object_label=255`` makes the cells the objects, and the weights peak on the thin membranes between
    touching cells. The border term is added outside the objects only (in the gaps between them).

    Distances come from one Euclidean distance transform per object, restricted to the object's bounding box grown
    by the reach of the border term (``d2 ≤ 4.3 σ``; beyond it the term is below 10⁻⁴ · w0 and dropped), so the cost
    grows with the number and size of objects, not with their number times the image size.

    Args:
        w0: border weight (10 in the paper).
        sigma: width of the border term, in voxels (5 in the paper), or in the units of ``spacing`` when given.
        object_label: ``None`` for instance labels; a value for a semantic mask whose connected components are the
            objects.
        connectivity: neighbourhood of connected components: 1 (faces: 4 in 2D, 6 in 3D; keeps cells apart across
            one-voxel diagonal membranes) up to the number of axes (8 in 2D, 26 in 3D).
        class_weights: ``"balanced"``: w_c = N / (K · N_c) for K classes of N_c voxels each (mean 1; computed per
            image); a mapping class value → weight; or ``None`` for w_c = 1. The classes are the label values with
            ``object_label`` set, background (0) and objects (1) for instance labels.
        spacing: voxel size per axis for anisotropic data (distances and ``sigma`` then in its units); ``None`` uses
            voxels. A ``MetaTensor``'s spacing is not used unless given here: the paper's σ is in pixels.

    Shapes:
        input ``(1, *spatial)`` integer-valued label (2D or 3D); output ``(1, *spatial)`` ``float32`` on the input's
        device (a ``MetaTensor`` keeps its metadata).
    """

    def __init__(
        self,
        w0: float = 10.0,
        sigma: float = 5.0,
        object_label: int | None = None,
        connectivity: int = 1,
        class_weights: str | Mapping[int, float] | None = "balanced",
        spacing: Sequence[float] | None = None,
    ) -> None:
        if sigma <= 0 or w0 < 0:
            raise ValueError(f"need sigma > 0 and w0 ≥ 0, got sigma={sigma}, w0={w0}")
        self.w0 = w0
        self.sigma = sigma
        self.object_label = object_label
        self.connectivity = connectivity
        self.class_weights = class_weights
        self.spacing = spacing

    def __call__(self, label: torch.Tensor) -> torch.Tensor:
        if label.ndim not in (3, 4) or label.shape[0] != 1:
            raise ValueError(
                f"expected a label of shape (1, *spatial) with 2 or 3 spatial axes, got {tuple(label.shape)}"
            )
        array = torch.as_tensor(label).detach().cpu().numpy()[0]
        weights = border_weight_map(
            array, self.w0, self.sigma, self.object_label, self.connectivity, self.class_weights, self.spacing
        )
        out = torch.as_tensor(weights[None]).to(label.device)
        if isinstance(label, MetaTensor):
            return MetaTensor(out, affine=label.affine, meta={k: v for k, v in label.meta.items() if k != "affine"})
        return out


class BorderWeightMapd(MapTransform):
    """Dictionary wrapper of :class:`BorderWeightMap`: writes the weight map of ``keys`` under ``output_keys``.

    Args:
        keys: label keys. output_keys: where to write each weight map (one per key; default ``"weight"``).
        allow_missing_keys: skip absent keys.
        w0, sigma, object_label, connectivity, class_weights, spacing: as in :class:`BorderWeightMap`.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_keys: str | Sequence[str] = "weight",
        w0: float = 10.0,
        sigma: float = 5.0,
        object_label: int | None = None,
        connectivity: int = 1,
        class_weights: str | Mapping[int, float] | None = "balanced",
        spacing: Sequence[float] | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_keys = (output_keys,) if isinstance(output_keys, str) else tuple(output_keys)
        if len(self.output_keys) != len(self.keys):
            raise ValueError(f"need one output key per key: keys {self.keys}, output_keys {self.output_keys}")
        self.weight_map = BorderWeightMap(w0, sigma, object_label, connectivity, class_weights, spacing)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key, output_key in self.key_iterator(d, self.output_keys):
            d[output_key] = self.weight_map(d[key])
        return d
