"""A labelled dataset as the planner reads it: an MSD-style ``dataset.json`` or a folder in the MSD/nnU-Net layout.

Two forms are accepted:

- a ``dataset.json`` (Medical Segmentation Decathlon): ``training`` list of ``{"image": path | [path per channel],
  "label": path}``, optional ``validation`` and ``test`` lists, ``modality`` (channel index → name), ``labels``
  (label value → name), optional ``name``, ``description``, ``reference``, ``licence``/``license``. Paths are
  relative to the JSON file's folder. An image may be one 4D file holding every channel as a volume (the Decathlon's
  multi-modal BrainTumour and Prostate files), one volume per ``modality`` entry. An optional ``"group"`` per
  training item keeps cases of one patient (or one video) in the same cross-validation fold. ``labels`` may also be
  written the nnU-Net v2 way, name → value or list of values (``{"background": 0, "whole tumour": [1, 2, 3, 4]}``):
  the listed values merge into one class (values given the same name in the MSD form merge too); entries that
  share values are nnU-Net v2's regions, and a label named ``ignore`` marks unannotated voxels
  (:mod:`~monai_unet.plan.labels`). An optional
  ``terminology`` gives each class its SNOMED CT codes, keyed by class name (or by a label value of the class):
  ``{"tumour": {"category": ["SCT", "49755003", "Morphologically Abnormal Structure"], "type": ["SCT",
  "108369006", "Neoplasm"], "region": ["SCT", "12738006", "Brain"]}}`` (:mod:`monai_unet.io.terminology`);
- a folder with ``imagesTr/`` and ``labelsTr/`` (optional ``imagesTs/``): channels as ``case_0000.nii.gz``,
  ``case_0001.nii.gz``, ... with the label ``labelsTr/case.nii.gz``; a ``dataset.json`` in it (or named instead of
  the folder, as nnU-Net v2 writes it, without a ``training`` list), is read for ``labels``, ``modality`` (or
  nnU-Net v2's ``channel_names``) and the terms. Without ``labels``, the values are read from the label files
  (:mod:`monai_unet.plan.label_scan`).

Only the ``training`` and ``validation`` cases are read for planning, never ``test``. Every problem is raised as a
:class:`DatasetError` naming the case (or the file) and what is wrong, before anything is trained.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_unet.errors import InputError
from monai_unet.io.naming import CHANNEL_FILE, case_name, image_files, strip_image_suffix
from monai_unet.io.terminology import parse_entry
from monai_unet.plan.label_scan import found_labels
from monai_unet.plan.labels import LabelTable, integer, label_table

__all__ = ["Case", "DatasetError", "PlanDataset", "group_of", "read_dataset"]

#: A trailing time-point marker in a case name (``patient001_frame01``, ``sub-3_ES``): cases that differ only by it
#: are one patient, kept in one fold.
_TIME_POINT = re.compile(r"_(?:frame|phase|time|tp|t|ed|es|visit|ses)[-_]?\d*$", re.IGNORECASE)


class DatasetError(InputError):
    """A dataset the planner cannot use; the message names the case or file and the problem (exit code 2)."""


@dataclass(frozen=True)
class Case:
    """One labelled case.

    Args:
        name: the case name (the image file without its suffix, or the channels' shared folder).
        images: one path per input channel (a file, or a DICOM series folder), absolute.
        label: the label map, absolute.
        group: cases with the same group (one patient, one video) stay in the same fold.
        relative: the item as written in the dataset (paths relative to the dataset root), for the bundle's split.
    """

    name: str
    images: tuple[Path, ...]
    label: Path
    group: str
    relative: dict = field(compare=False, repr=False)


@dataclass(frozen=True)
class PlanDataset:
    """A dataset ready to measure.

    Args:
        root: the folder that item paths are relative to (the ``dataset.json``'s folder).
        source: the ``dataset.json`` or folder the user named.
        name: the dataset's name.
        training: the cases to train (and cross-validate) on.
        validation: the dataset's own validation cases (empty: cross-validation folds are used).
        labels: class name → the label value(s) in the files that make the class, in class order (background
            first); a class of several values merges them.
        regions: nnU-Net v2's overlapping ``labels`` entries: region name → the classes whose union it is (empty
            for datasets without them).
        ignore_value: the label value of voxels nobody annotated (nnU-Net v2's ``ignore`` label), or None
            (:mod:`~monai_unet.plan.labels`).
        modality: one name per input channel as the dataset states it (may be fewer than the files hold).
        terms: the dataset's licence or terms, when it states them.
        info: other descriptive fields (``description``, ``reference``).
        terminology: class index (≥ 1) → its coded description as the bundle's ``metadata.json`` states it
            (``{"category": [...], "type": [...], "region": [...]}``); classes without one are absent.
        labels_found: the dataset declares no ``labels``: they were read from the label files
            (:func:`~monai_unet.plan.label_scan.found_labels`).
    """

    root: Path
    source: Path
    name: str
    training: tuple[Case, ...]
    validation: tuple[Case, ...]
    labels: dict[str, tuple[int, ...]]
    regions: dict[str, tuple[int, ...]]
    ignore_value: int | None
    modality: tuple[str, ...]
    terms: str | None
    info: dict[str, str]
    terminology: dict[int, dict] = field(default_factory=dict)
    labels_found: bool = False

    @property
    def num_classes(self) -> int:
        """Classes of the network's output, background included."""
        return len(self.labels)

    @property
    def label_names(self) -> list[str]:
        """Class names, background first."""
        return list(self.labels)

    @property
    def label_values(self) -> list[int | list[int]]:
        """Label values in the files, in class order: entry ``c`` (a value, or a list of merged values) becomes
        class ``c``. This is the form ``plans.json`` stores."""
        return [values[0] if len(values) == 1 else list(values) for values in self.labels.values()]

    def channel_names(self, channels: int) -> list[str]:
        """One name per input channel of the ``channels`` the files hold: the stated modalities, an RGB picture's
        colours, or ``channel i`` where the dataset names fewer."""
        if len(self.modality) == channels:
            return list(self.modality)
        if channels == 3 and len(self.modality) <= 1:
            base = self.modality[0] if self.modality else "image"
            return [f"{base} {c}" for c in ("red", "green", "blue")]
        return [self.modality[i] if i < len(self.modality) else f"channel {i}" for i in range(channels)]

    def all_cases(self) -> tuple[Case, ...]:
        """Training then validation cases (every case the planner measures)."""
        return self.training + self.validation


def group_of(name: str) -> str:
    """The fold group of a case: its name without a trailing time-point marker (``patient001_frame01`` →
    ``patient001``), so both cardiac phases of one patient land in the same fold."""
    return _TIME_POINT.sub("", name) or name


def _label_table(labels: Any, source: Path) -> LabelTable:
    try:
        return label_table(labels, source)
    except ValueError as error:
        raise DatasetError(str(error)) from None


def _terminology(table: Any, labels: dict[str, tuple[int, ...]], source: Path) -> dict[int, dict]:
    """``terminology`` of the dataset → class index → entry, each entry checked
    (:func:`~monai_unet.io.terminology.parse_entry`); keys are class names or label values of a class."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise DatasetError(f"{source}: 'terminology' must map class names to codes, e.g. " + _TERMINOLOGY_EXAMPLE)
    by_name = {name.lower(): index for index, name in enumerate(labels)}
    by_value = {value: index for index, values in enumerate(labels.values()) for value in values}
    entries: dict[int, dict] = {}
    for key, entry in table.items():
        value = integer(key)
        index = by_name.get(str(key).lower(), by_value.get(value) if value is not None else None)
        if index is None or index == 0:
            raise DatasetError(
                f"{source}: 'terminology' names {key!r}, which is not a foreground class of 'labels' "
                f"({', '.join(list(labels)[1:])})"
            )
        try:
            parse_entry(entry, f"terminology[{key!r}]")
        except ValueError as error:
            raise DatasetError(f"{source}: {error}; e.g. " + _TERMINOLOGY_EXAMPLE) from None
        entries[index] = entry
    return entries


_TERMINOLOGY_EXAMPLE = (
    '{"tumour": {"category": ["SCT", "49755003", "Morphologically Abnormal Structure"], '
    '"type": ["SCT", "108369006", "Neoplasm"]}}'
)


def _modality(value: Any, source: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise DatasetError(f"{source}: 'modality' must map channel indices to names, e.g. " + '{"0": "CT"}')
    try:
        return tuple(str(value[k]) for k in sorted(value, key=int))
    except ValueError:
        raise DatasetError(f"{source}: 'modality' keys must be channel indices 0, 1, ...") from None


def _case(item: Any, root: Path, source: Path, list_key: str, index: int) -> Case:
    where = f"{source}: {list_key}[{index}]"
    if not isinstance(item, dict) or "image" not in item or "label" not in item:
        raise DatasetError(f"{where}: each case must be an object with 'image' and 'label' (got {item!r})")
    images = item["image"] if isinstance(item["image"], list) else [item["image"]]
    if not images or not all(isinstance(p, str) and p for p in images) or not isinstance(item["label"], str):
        raise DatasetError(f"{where}: 'image' must be a path or a list of paths and 'label' a path")
    paths = tuple((root / p).resolve() for p in images)
    label = (root / item["label"]).resolve()
    name = case_name(paths if len(paths) > 1 else paths[0])
    for path in (*paths, label):
        if not path.exists():
            raise DatasetError(f"{where} (case {name}): {path} does not exist")
    group = str(item.get("group") or group_of(name))
    return Case(name, paths, label, group, {"image": item["image"], "label": item["label"], "group": group})


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: cannot be read ({error})") from None
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}: is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: holds a {type(data).__name__}; an MSD dataset.json is a JSON object")
    return data


def _msd_folder_items(folder: Path) -> list[dict]:
    """Training items of an MSD/nnU-Net folder: ``imagesTr/case_0000.ext`` (``_0001``, ... for more channels) with
    ``labelsTr/case.ext``."""
    images_dir, labels_dir = folder / "imagesTr", folder / "labelsTr"
    channels: dict[str, list[tuple[int, Path]]] = {}
    for path in image_files(images_dir):
        stem = strip_image_suffix(path.name)
        match = CHANNEL_FILE.match(stem)
        case, channel = (match["case"], int(match["channel"])) if match else (stem, 0)
        channels.setdefault(case, []).append((channel, path))
    labels = {strip_image_suffix(p.name): p for p in image_files(labels_dir)}
    items = []
    for case, found in sorted(channels.items()):
        found.sort()
        numbers = [c for c, _ in found]
        if numbers != list(range(len(numbers))):
            raise DatasetError(f"{images_dir}: case {case} has channels {numbers}; expected _0000, _0001, ... in order")
        if case not in labels:
            raise DatasetError(f"{labels_dir}: case {case} has no label file (expected {case} with the image's suffix)")
        images = [str(p.relative_to(folder)) for _, p in found]
        items.append(
            {"image": images if len(images) > 1 else images[0], "label": str(labels[case].relative_to(folder))}
        )
    return items


def read_dataset(path: str | Path, progress: bool = False) -> PlanDataset:
    """Read a ``dataset.json`` or an MSD/nnU-Net folder; checks structure and that every file exists.

    Voxel-level checks (grids, label values, channel counts) are made while measuring
    (:func:`monai_unet.plan.fingerprint.measure`), which reads every case anyway; only a dataset without ``labels``
    has its label files read here for their values (with a progress bar where ``progress``).

    Raises:
        DatasetError: missing path or file, a JSON that is not MSD-shaped, an empty training list, labels that are
            not integers, duplicate case names (the message names the case or file).
    """
    source = Path(path).expanduser()
    if source.is_dir():
        root = source.resolve()
        json_path = root / "dataset.json"
        data = _read_json(json_path) if json_path.is_file() else {}
        meta_source = json_path if json_path.is_file() else source
    elif source.is_file():
        if source.suffix.lower() != ".json":
            raise DatasetError(f"{source}: give a dataset.json or a dataset folder, not a {source.suffix} file")
        root = source.resolve().parent
        data, meta_source = _read_json(source), source
    else:
        raise DatasetError(f"{source}: no such dataset.json or folder")
    if "training" not in data and (root / "imagesTr").is_dir() and (root / "labelsTr").is_dir():
        data = {**data, "training": _msd_folder_items(root)}  # a folder, or nnU-Net v2's dataset.json beside it
    training = data.get("training")
    if not isinstance(training, list):
        raise DatasetError(
            f"{meta_source}: no 'training' list of cases and no imagesTr/ and labelsTr/ folders; this is not an "
            "MSD-style dataset"
        )
    if not training:
        raise DatasetError(f"{meta_source}: the 'training' list is empty; there is nothing to train on")
    found = "labels" not in data  # then read from the label files, once the cases are known
    table = LabelTable({}, {}, None) if found else _label_table(data["labels"], meta_source)
    train_cases = [_case(item, root, meta_source, "training", i) for i, item in enumerate(training)]
    validation_items = data.get("validation") or []
    if not isinstance(validation_items, list):
        raise DatasetError(f"{meta_source}: 'validation' must be a list of cases")
    val_cases = [_case(item, root, meta_source, "validation", i) for i, item in enumerate(validation_items)]
    # MSD's validation list may repeat training cases (a suggested hold-out): those leave the training set.
    held_out = {c.images for c in val_cases}
    train_cases = [c for c in train_cases if c.images not in held_out]
    if not train_cases:
        raise DatasetError(f"{meta_source}: every training case is also a validation case; nothing is left to train on")
    seen: dict[str, Case] = {}
    for case in train_cases + val_cases:
        if case.name in seen:
            raise DatasetError(
                f"{meta_source}: two cases share the name {case.name} ({seen[case.name].images[0]} and "
                f"{case.images[0]}); outputs are named after the case, so names must be unique"
            )
        seen[case.name] = case
    if found:
        try:
            found_table = found_labels([c.label for c in train_cases + val_cases], meta_source, progress)
        except InputError as error:
            raise DatasetError(str(error)) from None
        table = _label_table(found_table, meta_source)
    terms = data.get("licence") or data.get("license")
    info = {k: str(data[k]) for k in ("description", "reference", "release", "tensorImageSize") if k in data}
    return PlanDataset(
        root=root,
        source=source.resolve(),
        name=str(data.get("name") or root.name),
        training=tuple(train_cases),
        validation=tuple(val_cases),
        labels=table.classes,
        regions=table.regions,
        ignore_value=table.ignore,
        modality=_modality(data.get("modality", data.get("channel_names")), meta_source),
        terms=str(terms) if terms else None,
        info=info,
        terminology=_terminology(data.get("terminology"), table.classes, meta_source),
        labels_found=found,
    )
