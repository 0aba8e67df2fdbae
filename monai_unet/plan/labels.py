"""A dataset's ``labels`` table → the classes the network learns, nnU-Net v2's regions, and the ignore label.

Two forms are read: MSD, label value → name (``{"0": "background", "2": "liver"}``), where values that share a name
merge into one class; and nnU-Net v2, name → value or list of values (``{"background": 0, "tumour": [1, 2]}``).
The background is the class named ``background`` (any case), else the class holding value 0; the others follow in
ascending order of their smallest value and become classes 1, 2, ... Entries that share values are nnU-Net v2's
overlapping regions (:mod:`~monai_unet.plan.regions`).

A label named ``ignore`` (nnU-Net v2's, one value above every other) marks voxels nobody annotated: the 3D U-Net's
sparse annotation (Çiçek et al. 2016), where unlabelled voxels get weight 0. It is no class: training maps it to the
index just past the classes (``len(label_values)``), which the loss and every validation metric leave out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monai_unet.plan.regions import overlapping, split_regions

__all__ = ["LabelTable", "class_of_value", "integer", "label_mapping", "label_table"]

IGNORE_NAME = "ignore"


@dataclass(frozen=True)
class LabelTable:
    """``classes``: class name → label values, background first; ``regions``: region name → class indices (empty
    without overlapping entries); ``ignore``: the label value of unannotated voxels, or None."""

    classes: dict[str, tuple[int, ...]]
    regions: dict[str, tuple[int, ...]]
    ignore: int | None


def class_of_value(label_values: list[int | list[int]], ignore: int | None = None) -> dict[int, int]:
    """Label value in the files → class index, from ``label_values`` as
    :attr:`~monai_unet.plan.dataset.PlanDataset.label_values` gives it; the ``ignore`` value (if any) maps to the
    index past the last class."""
    lookup: dict[int, int] = {}
    for index, entry in enumerate(label_values):
        for value in entry if isinstance(entry, list) else [entry]:
            lookup[int(value)] = index
    if ignore is not None:
        lookup[int(ignore)] = len(label_values)
    return lookup


def label_mapping(label_values: list[int | list[int]], ignore: int | None = None) -> tuple[list[int], list[int]] | None:
    """``(orig_labels, target_labels)`` for ``MapLabelValued``, or None when the files already hold the classes
    ``0 .. C-1`` one value each (and the ``ignore`` value, if any, is ``C``): nothing to map."""
    lookup = class_of_value(label_values, ignore)
    if lookup == {c: c for c in range(len(lookup))}:
        return None
    return list(lookup), list(lookup.values())


def integer(key: Any) -> int | None:
    """``key`` as an int when it is one (``"2"``, ``2``), else None."""
    try:
        number = int(key)
    except (TypeError, ValueError):
        return None
    return number if str(number) == str(key).strip() else None


def _entries(labels: Any, source: Path) -> dict[str, list[int]]:
    """``labels`` in either form → name → values (MSD values sharing a name merged)."""
    if not isinstance(labels, dict) or len(labels) < 2:
        raise ValueError(
            f"{source}: 'labels' must map at least two label values to names, e.g. "
            '{"0": "background", "1": "tumour"}; got ' + json.dumps(labels)
        )
    entries: dict[str, list[int]] = {}
    if all(integer(key) is None for key in labels):  # nnU-Net v2: name → value(s)
        for name, values in labels.items():
            listed = values if isinstance(values, list) else [values]
            if not listed or not all(isinstance(v, int) and not isinstance(v, bool) for v in listed):
                raise ValueError(
                    f"{source}: label {name!r} in 'labels' must give an integer value or a list of them "
                    f"(got {json.dumps(values)})"
                )
            entries[str(name)] = list(listed)
        return entries
    for key, name in labels.items():  # MSD: value → name
        number = integer(key)
        if number is None:
            raise ValueError(
                f"{source}: label value {key!r} in 'labels' is not an integer (write either value → name, or "
                "name → value(s) for every label)"
            )
        entries.setdefault(str(name), []).append(number)
    return entries


def _ignore_value(entries: dict[str, list[int]], source: Path) -> int | None:
    """Take the ``ignore`` entry out of ``entries``; its value, checked as nnU-Net v2 checks it."""
    named = [n for n in entries if n.strip().lower() == IGNORE_NAME]
    if not named:
        return None
    values = entries.pop(named[0])
    others = [v for listed in entries.values() for v in listed]
    if len(values) != 1 or values[0] <= max(others, default=values[0]):
        raise ValueError(
            f"{source}: the label {named[0]!r} (voxels nobody annotated) must be one value above every other label "
            f"value (got {values}; the others reach {max(others)}), as nnU-Net v2 requires"
        )
    return values[0]


def label_table(labels: Any, source: Path) -> LabelTable:
    """``labels`` as the dataset writes it → :class:`LabelTable`.

    Raises:
        ValueError: not a table of names and integer values, no background, nothing to segment, an ``ignore``
            label that is not the highest value, a region that shares a value with the background (each message
            names ``source``).
    """
    entries = _entries(labels, source)
    ignore = _ignore_value(entries, source)
    named = [n for n in entries if n.strip().lower() == "background"]
    if len(named) > 1:
        raise ValueError(f"{source}: more than one label is named 'background' ({named})")
    background = named[0] if named else next((n for n, values in entries.items() if 0 in values), None)
    if background is None:
        raise ValueError(f"{source}: no label is named 'background' and there is no value 0 to take as background")
    if len(entries) < 2:
        raise ValueError(f"{source}: 'labels' names only one class ({background!r}); there is nothing to segment")
    if overlapping(entries):  # nnU-Net v2 regions: one class per atom, each region a union of classes
        classes, regions = split_regions(entries, background, source)
        return LabelTable(classes, regions, ignore)
    order = [background, *sorted((n for n in entries if n != background), key=lambda n: min(entries[n]))]
    return LabelTable({n: tuple(sorted(set(entries[n]))) for n in order}, {}, ignore)
