"""The dataset fingerprint: what the planner measures on every training and validation case.

Per case: spatial shape (voxels), spacing (mm; 1 for pictures), channels, the fraction of nonzero image voxels and
how much a crop to them would shrink the case, class voxel counts, each class's thickness (twice its volume over its
boundary voxels across the fine axes, in mm: a plate t voxels thick gives t, a ball of radius r about 2r/3, so it
says how far a class can be coarsened before it vanishes), and per channel the 0.5 and 99.5 percentiles,
mean and standard deviation over the image and inside the labelled foreground. Over the dataset: the same
intensity statistics pooled over a seeded sample of foreground voxels (at most 10,000 per case and channel, as
nnU-Net samples), which is what CT normalisation uses.

Label pictures saved as RGB with equal channels, or as (lossy) JPEG, are read through
:func:`~monai_unet.transforms.picture_label.picture_label` as the planned configs read them; ``label_decoding`` says
which of the two the dataset needed. A label picture with a colour palette (PASCAL VOC's masks) is read as its palette
indices, the classes it stores (``label_decoding["palette"]``).

Reading goes through :class:`monai_unet.io.LoadScan` (our fast reader) with a progress bar on stderr. Every
voxel-level problem is raised here, naming the case: image and label on different grids, a label value not in
``labels``, a case whose channel count or number of dimensions differs from the first case's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from monai.data.utils import affine_to_spacing

from monai_unet.io import ImageInputError, LoadScan, SimpleITKReader
from monai_unet.io.axes import reversed_axes_contiguous
from monai_unet.io.image_file import is_colour_palette
from monai_unet.plan.dataset import Case, DatasetError, PlanDataset
from monai_unet.plan.label_scan import is_lossy, label_file_hint, value_counts
from monai_unet.plan.labels import class_of_value
from monai_unet.transforms.picture_label import picture_label

__all__ = ["CaseFingerprint", "ChannelStats", "Fingerprint", "measure", "summarise_shapes"]

_SAMPLES_PER_CASE = 10_000
_GRID_TOLERANCE_MM = 1e-3
_PERCENTILES = (0.5, 99.5)


@dataclass
class ChannelStats:
    """Intensity statistics of one channel (units of the image: HU for CT, arbitrary for MR, 0-255 for pictures)."""

    p00_5: float
    p99_5: float
    mean: float
    std: float
    foreground_p00_5: float | None
    foreground_p99_5: float | None
    foreground_mean: float | None
    foreground_std: float | None


@dataclass
class CaseFingerprint:
    """What one case looks like.

    Args:
        name: the case name.
        shape: spatial shape in voxels (x, y[, z]).
        spacing: voxel size in mm per spatial axis (1.0 for pictures without a physical size).
        channels: input channels read from the files (an RGB picture is 3).
        class_voxels: voxel count per class (class index order, background first).
        class_thickness: per class, 2 × voxels / boundary voxels across the fine axes (those within twice the
            finest spacing), times the finest spacing: mm (pixels for pictures); None where the class is absent.
        nonzero_fraction: fraction of voxels where any channel is nonzero.
        nonzero_crop_fraction: volume of the bounding box of those voxels over the whole volume.
        intensities: statistics per channel.
    """

    name: str
    shape: list[int]
    spacing: list[float]
    channels: int
    class_voxels: list[int]
    class_thickness: list[float | None]
    nonzero_fraction: float
    nonzero_crop_fraction: float
    intensities: list[ChannelStats]


@dataclass
class Fingerprint:
    """The whole dataset's measurements; ``cases`` in dataset order (training then validation)."""

    spatial_dims: int
    channels: int
    num_classes: int
    cases: list[CaseFingerprint]
    foreground: list[ChannelStats]
    source_dtype: str
    label_decoding: dict[str, bool] = field(default_factory=dict)  # {"colour", "lossy", "palette"}: True where needed

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)

    def median(self, attribute: str) -> np.ndarray:
        """Per-axis median of ``shape`` or ``spacing`` over the cases."""
        return np.median(np.array([getattr(c, attribute) for c in self.cases], dtype=float), axis=0)

    def class_fractions(self) -> list[float]:
        """Fraction of all voxels in each class."""
        counts = np.sum([c.class_voxels for c in self.cases], axis=0).astype(float)
        return (counts / max(counts.sum(), 1.0)).tolist()


def _stats(values: np.ndarray) -> tuple[float, float, float, float]:
    if values.size == 0:
        return (float("nan"),) * 4  # type: ignore[return-value]
    low, high = np.percentile(values, _PERCENTILES)
    return float(low), float(high), float(values.mean()), float(values.std())


def _channel_stats(image: np.ndarray, foreground: np.ndarray | None) -> ChannelStats:
    low, high, mean, std = _stats(image.ravel())
    if foreground is None or foreground.size == 0:
        return ChannelStats(low, high, mean, std, None, None, None, None)
    f_low, f_high, f_mean, f_std = _stats(foreground)
    return ChannelStats(low, high, mean, std, f_low, f_high, f_mean, f_std)


def _c_order(array: np.ndarray) -> np.ndarray:
    """``array`` (x, y[, z]) C-contiguous. The reader keeps the file's voxel order (x fastest), in which every pass
    of the measurements would stride across memory (4x slower on a 512 x 512 x 100 CT): one copy, block by block in
    3D (:func:`~monai_unet.io.axes.reversed_axes_contiguous`), makes them sequential."""
    if array.flags.c_contiguous:
        return array
    if array.ndim == 3 and array.flags.f_contiguous:
        return reversed_axes_contiguous(array.T, 3)
    return np.ascontiguousarray(array)


def _classes(label: np.ndarray, lookup: dict[int, int], num_classes: int) -> tuple[np.ndarray, list[int], list[float]]:
    """The class-index map of the label map ``label`` (``lookup``: label value → class; merged values become one
    class; the ignore label → ``num_classes``) as uint8 below 256 classes, its voxel count per class (unannotated
    voxels not counted), and the values ``label`` holds that ``lookup`` lacks (then the map and counts are empty).

    Integer labels are counted per value (:func:`~monai_unet.plan.label_scan.value_counts`) and mapped through a
    table indexed by value; others (float files, negative values) go through a sorted search."""
    dtype = np.uint8 if num_classes < 256 else np.int32  # the ignore label, if any, is index num_classes
    counts = value_counts(label)
    if counts is not None:
        undeclared = [float(v) for v in np.flatnonzero(counts) if int(v) not in lookup]
        if undeclared:
            return np.empty(0, dtype), [], undeclared
        table = np.zeros(counts.size, dtype=dtype)
        for value, index in lookup.items():
            if 0 <= value < counts.size:
                table[value] = index
        voxels = np.bincount(table, weights=counts, minlength=num_classes)[:num_classes]
        return table[label], [int(v) for v in voxels], []
    undeclared = [v for v in np.unique(label).tolist() if v not in lookup]
    if undeclared:
        return np.empty(0, dtype), [], undeclared
    values = np.array(sorted(lookup))
    classes = np.array([lookup[v] for v in values], dtype=dtype)[np.searchsorted(values, label)]
    return classes, np.bincount(classes.ravel(), minlength=num_classes)[:num_classes].tolist(), []


def _bounding_box_fraction(mask: np.ndarray) -> float:
    if not mask.any():
        return 1.0
    extent = 1.0
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        present = np.flatnonzero(mask.any(axis=other))
        extent *= (present[-1] - present[0] + 1) / mask.shape[axis]
    return float(extent)


def _class_thickness(
    label: np.ndarray, spacing: np.ndarray, class_voxels: Sequence[int], sparse: bool = False
) -> list[float | None]:
    """Per class of a class-index map ``label`` (``class_voxels``: its voxel count per class): 2 × voxels /
    boundary voxels across the fine axes, in units of the finest spacing; None for a class absent from ``label``.
    A voxel is on the boundary when a face neighbour along a fine axis has another class (the volume's own edges
    are not boundaries; with ``sparse`` annotation, nor are the unannotated voxels, index ``len(class_voxels)``)."""
    fine = [a for a in range(label.ndim) if spacing[a] <= 2.0 * spacing.min()]
    boundary = np.zeros(label.shape, dtype=bool)
    annotated = label < len(class_voxels) if sparse else None  # an extra pass only where there is an ignore label
    for axis in fine:
        low = [slice(None)] * label.ndim
        high = [slice(None)] * label.ndim
        low[axis], high[axis] = slice(None, -1), slice(1, None)
        differs = np.diff(label, axis=axis) != 0
        if annotated is not None:
            differs &= annotated[tuple(low)] & annotated[tuple(high)]
        boundary[tuple(low)] |= differs
        boundary[tuple(high)] |= differs
    edges = np.bincount(label[boundary].ravel(), minlength=len(class_voxels))[: len(class_voxels)]
    return [
        round(float(2.0 * count / max(int(edge), 1) * spacing.min()), 3) if count else None
        for count, edge in zip(class_voxels, edges, strict=True)
    ]


def _read_case(
    case: Case, loader: LoadScan, label_loader: LoadScan, modality: Sequence[str], values: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, set[str]]:
    """The case's image, label (label pictures decoded), spacing, stored type and the decodings its label needed
    (``"colour"``, ``"lossy"``, ``"palette"``: read as palette indices)."""
    try:
        image = loader([str(p) for p in case.images] if len(case.images) > 1 else str(case.images[0]))
        label = label_loader(str(case.label))
    except ImageInputError as error:
        raise DatasetError(f"case {case.name}: {error}") from None
    packed = len(case.images) == 1 and image.ndim == 4 and image.shape[0] > 1  # one 3D file with several channels
    if packed and image.shape[0] != max(len(modality), 1):
        raise DatasetError(
            f"case {case.name}: {case.images[0]} is a 4D image of {image.shape[0]} volumes, read as one channel each "
            f"(the Medical Segmentation Decathlon's multi-modal files), but dataset.json 'modality' names "
            f"{len(modality)} channel(s); name each volume in 'modality', or extract the one volume to use"
        )
    decoding = {"colour"} if label.shape[0] in (3, 4) else set()
    decoding |= {"lossy"} if is_lossy(case.label) else set()
    decoding |= {"palette"} if is_colour_palette(case.label) else set()
    if label.shape[0] not in (1, 3, 4):
        raise DatasetError(
            f"case {case.name}: {case.label} has {label.shape[0]} channels; a label must be one integer map"
        )
    label_values = label.numpy()
    if decoding & {"colour", "lossy"}:
        try:
            label_values = picture_label(label_values, values, "lossy" in decoding)
        except ValueError as error:
            raise DatasetError(f"case {case.name}: {case.label}: {error}") from None
    if image.shape[1:] != label.shape[1:]:
        raise DatasetError(
            f"case {case.name}: image {case.images[0]} is {tuple(image.shape[1:])} voxels but label {case.label} is "
            f"{tuple(label.shape[1:])}; image and label must share one grid"
            + (
                " (one is stored as a 3D file one slice thick, the other as 2D: save both the same way)"
                if [n for n in image.shape[1:] if n != 1] == [n for n in label.shape[1:] if n != 1]
                else ""
            )
        )
    difference = float(torch.max(torch.abs(image.affine - label.affine)))
    if difference > _GRID_TOLERANCE_MM:
        raise DatasetError(
            f"case {case.name}: image {case.images[0]} and label {case.label} have the same size but different "
            f"origin, spacing or direction (affines differ by up to {difference:.4g} mm); resample the label onto "
            "the image's grid"
        )
    spacing = affine_to_spacing(image.affine.numpy(), r=image.ndim - 1)
    channels = [_c_order(channel) for channel in image.numpy()]
    return (
        channels[0][None] if len(channels) == 1 else np.stack(channels),
        _c_order(label_values[0]),
        np.asarray(spacing, dtype=float),
        str(image.meta.get("source_dtype", "")),
        decoding,
    )


def measure(dataset: PlanDataset, seed: int = 0, progress: bool = True) -> Fingerprint:
    """Read every training and validation case once and measure it.

    Args:
        dataset: the dataset from :func:`~monai_unet.plan.dataset.read_dataset`.
        seed: seeds the foreground voxel sample (the fingerprint is deterministic for a fixed seed).
        progress: show a progress bar on stderr.

    Raises:
        DatasetError: an unreadable case, image and label on different grids, a label value not declared in
            ``labels``, a case whose channel count or dimensions differ from the first case's.
    """
    from tqdm import tqdm

    loader = LoadScan(SimpleITKReader(allow_4d=True), dtype=np.float32, ensure_channel_first=True)
    label_loader = LoadScan(SimpleITKReader(palette_indices=True), dtype=None, ensure_channel_first=True)
    rng = np.random.default_rng(seed)
    lookup = class_of_value(dataset.label_values, dataset.ignore_value)  # unannotated voxels: index num_classes
    cases: list[CaseFingerprint] = []
    samples: list[list[np.ndarray]] = []
    first: tuple[int, int, str] | None = None
    source_dtype = ""
    label_decoding: set[str] = set()
    for case in tqdm(dataset.all_cases(), desc="measuring", unit="case", disable=not progress, leave=False):
        image, label, spacing, dtype, decoding = _read_case(case, loader, label_loader, dataset.modality, list(lookup))
        label_decoding |= decoding
        shape = (image.ndim - 1, image.shape[0])
        if first is None:
            first = (*shape, str(case.images[0]))
            source_dtype = dtype
        elif shape != first[:2]:
            raise DatasetError(
                f"case {case.name}: {image.ndim - 1}D with {image.shape[0]} channel(s), but the first case "
                f"({first[2]}) is {first[0]}D with {first[1]} channel(s); every case needs the same dimensions and "
                "channels"
                + (
                    " (grey and colour pictures mixed: save them all as RGB, or all as greyscale)"
                    if shape[0] == first[0] == 2 and {shape[1], first[1]} <= {1, 3, 4}
                    else ""
                )
            )
        classes, class_voxels, undeclared = _classes(label, lookup, dataset.num_classes)
        if undeclared:
            shown = ", ".join(f"{v:g}" for v in undeclared[:5])
            raise DatasetError(
                f"case {case.name}: label {case.label} holds value(s) {shown} not declared in 'labels' "
                f"({', '.join(map(str, lookup))}){label_file_hint(case.label)}"
            )
        foreground_mask = classes != 0
        if dataset.ignore_value is not None:  # unannotated voxels are no foreground
            foreground_mask &= classes < dataset.num_classes
        nonzero = np.any(image != 0, axis=0)
        intensities, case_samples = [], []
        for channel in image:
            foreground = channel[foreground_mask]
            if foreground.size > _SAMPLES_PER_CASE:
                foreground = rng.choice(foreground, _SAMPLES_PER_CASE, replace=False)
            case_samples.append(foreground)
            intensities.append(_channel_stats(channel, foreground))
        samples.append(case_samples)
        cases.append(
            CaseFingerprint(
                name=case.name,
                shape=[int(s) for s in image.shape[1:]],
                spacing=[float(s) for s in spacing],
                channels=int(image.shape[0]),
                class_voxels=class_voxels,
                class_thickness=_class_thickness(classes, spacing, class_voxels, dataset.ignore_value is not None),
                nonzero_fraction=float(nonzero.mean()),
                nonzero_crop_fraction=_bounding_box_fraction(nonzero),
                intensities=intensities,
            )
        )
    assert first is not None  # read_dataset refuses an empty training list
    pooled = [
        _channel_stats(np.concatenate(channel_samples), np.concatenate(channel_samples))
        for channel_samples in zip(*samples, strict=True)
    ]
    return Fingerprint(
        spatial_dims=first[0],
        channels=first[1],
        num_classes=dataset.num_classes,
        cases=cases,
        foreground=pooled,
        source_dtype=source_dtype,
        label_decoding={key: True for key in sorted(label_decoding)},
    )


def summarise_shapes(cases: Sequence[CaseFingerprint]) -> dict[str, list[float]]:
    """Minimum, median and maximum shape and spacing over the cases (for the bundle's README)."""
    shapes = np.array([c.shape for c in cases], dtype=float)
    spacings = np.array([c.spacing for c in cases], dtype=float)
    return {
        "shape_min": shapes.min(axis=0).tolist(),
        "shape_median": np.median(shapes, axis=0).tolist(),
        "shape_max": shapes.max(axis=0).tolist(),
        "spacing_min": spacings.min(axis=0).tolist(),
        "spacing_median": np.median(spacings, axis=0).tolist(),
        "spacing_max": spacings.max(axis=0).tolist(),
    }
