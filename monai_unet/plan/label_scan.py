"""Label values read from the label files, for a dataset that does not declare its ``labels``; and the hint that
explains a label file the planner cannot use (a lossy JPEG without declared values, a 1-bit picture).

A folder of ``imagesTr/`` and ``labelsTr/`` without a ``dataset.json`` (or one without ``labels``) is common for 2D
sets exported by hand. Its label values are then found in the files: value 0 is the background and every other value
is a class named ``label <value>``, in ascending order (``monai-unet plan`` warns and says how to name them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from monai_unet.errors import InputError
from monai_unet.io import ImageInputError, LoadScan, SimpleITKReader
from monai_unet.io.image_file import is_colour_palette
from monai_unet.transforms.picture_label import picture_label

__all__ = ["MAX_FOUND_VALUES", "decoding_reason", "found_labels", "is_lossy", "label_file_hint", "value_counts"]

#: More distinct values than this in the label files is an intensity image or a lossy export, not a class map
#: (TotalSegmentator's 117 structures fit).
MAX_FOUND_VALUES = 255

_JPEG = (".jpg", ".jpeg")


def _picture_mode(path: Path) -> str:
    """A picture's colour mode from its header (``"1"``: 1 bit per pixel), or empty where it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as picture:
            return picture.mode
    except OSError:
        return ""


def is_lossy(path: Path) -> bool:
    """Whether a label file's format compresses with loss (JPEG), leaving values between the classes at edges."""
    return path.name.lower().endswith(_JPEG)


def decoding_reason(decoding: dict[str, bool]) -> dict[str, str]:
    """The plan's reason for reading the labels as pictures (``Fingerprint.label_decoding``); empty if not needed."""
    done = []
    if decoding.get("colour"):
        done.append("grey masks stored as RGB(A) are read as their one grey channel")
    if decoding.get("palette"):
        done.append("label pictures with a colour palette (as PASCAL VOC saves them) are read as their palette indices")
    if decoding.get("lossy"):
        done.append(
            "labels saved as JPEG (lossy: values between the classes along every edge) have each value read as the "
            "nearest declared one"
        )
    return {"labels": "Label pictures: " + "; ".join(done) + "."} if done else {}


def label_file_hint(path: Path) -> str:
    """Why a label file holds values it should not, where its format says so; empty otherwise."""
    if is_lossy(path):
        return (
            "; JPEG compression is lossy, so a label saved as JPEG holds values between the classes along every "
            "edge: declare the class values in dataset.json 'labels' (each value is then read as the nearest "
            "declared one), or save the labels as PNG"
        )
    if is_colour_palette(path):
        return (
            "; it is a picture with a colour palette, read as its palette indices (the classes); PASCAL VOC marks "
            "object borders with index 255 ('void'): declare it in 'labels' or give those pixels a class"
        )
    if path.name.lower().endswith((".png", ".tif", ".tiff", ".bmp", ".gif")) and _picture_mode(path) == "1":
        return "; it is a 1-bit picture, which reads as 0 and 255 (not 0 and 1): declare 255 in 'labels'"
    return ""


def value_counts(label: np.ndarray) -> np.ndarray | None:
    """Voxels per value of an integer label map with values in [0, 2**16), indexed by value (one counting pass,
    ``torch.bincount``, where ``np.unique`` would sort every voxel); None for other maps (float files, negative
    values)."""
    if label.dtype.kind not in "ui" or not label.size or int(label.min()) < 0 or int(label.max()) >= 2**16:
        return None
    values = np.ascontiguousarray(label).ravel()
    if values.dtype.kind == "u" and values.dtype.itemsize > 1:  # torch counts no unsigned type but uint8
        values = values.astype(np.int32)  # exact: the values are below 2**16
    return torch.bincount(torch.from_numpy(values)).numpy()


def found_labels(labels: Sequence[Path], source: Path, progress: bool = True) -> dict[str, str]:
    """The label values of ``labels`` (label files), as an MSD ``labels`` table: ``{"0": "background", "1":
    "label 1", ...}``, read with a progress bar on stderr unless ``progress`` is False.

    Raises:
        InputError: an unreadable file, a JPEG, a colour-coded file, non-integer values (naming the file), more than
            :data:`MAX_FOUND_VALUES` distinct values, or no value 0 to take as background.
    """
    from tqdm import tqdm

    loader = LoadScan(SimpleITKReader(palette_indices=True), dtype=None, ensure_channel_first=True)
    values: set[int] = set()
    for path in tqdm(labels, desc="label values", unit="case", disable=not progress, leave=False):
        if is_lossy(path):  # its edge values would each become a class
            raise InputError(f"{source}: no 'labels' table, and {path.name} is a lossy label{label_file_hint(path)}")
        try:
            label = loader(str(path))
        except ImageInputError as error:
            raise InputError(f"{path}: {error}") from None
        if label.shape[0] not in (1, 3, 4):
            raise InputError(f"{path}: has {label.shape[0]} channels; a label must be one integer map")
        try:
            grey = picture_label(label.numpy(), [], lossy=False)  # a grey mask stored as RGB: one channel
        except ValueError as error:
            raise InputError(f"{path}: {error}") from None
        counts = value_counts(grey)
        found = np.flatnonzero(counts) if counts is not None else np.unique(grey)
        if not np.array_equal(found, np.round(found)):
            raise InputError(
                f"{path}: holds non-integer values (e.g. {found[found != np.round(found)][0]:g}); a label "
                "must hold one integer per class"
            )
        values.update(int(v) for v in found)
        if len(values) > MAX_FOUND_VALUES:
            raise InputError(
                f"{source}: no 'labels' table, and the label files hold more than {MAX_FOUND_VALUES} distinct values "
                f"(up to {path.name}), which is not a class map{label_file_hint(path)}; add 'labels' to dataset.json "
                '({"0": "background", "1": "...", ...})'
            )
    if 0 not in values:
        raise InputError(
            f"{source}: no 'labels' table, and no label file holds value 0 to take as background (values "
            f"{', '.join(map(str, sorted(values)[:8]))}); add 'labels' to dataset.json naming the background"
        )
    return {str(v): "background" if v == 0 else f"label {v}" for v in sorted(values)}
