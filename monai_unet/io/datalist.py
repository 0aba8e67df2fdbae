"""Inference inputs: a folder of images, or an MSD-style ``dataset.json`` with a ``test`` list."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from monai.data import load_decathlon_datalist

from monai_unet.io.errors import ImageInputError
from monai_unet.io.naming import CHANNEL_FILE, case_name, strip_image_suffix

__all__ = ["list_inputs"]

DEFAULT_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


def list_inputs(
    dataset_dir: str | os.PathLike,
    suffixes: Sequence[str] = DEFAULT_SUFFIXES,
    list_key: str = "test",
    channels: int = 1,
) -> list[dict]:
    """The cases to segment, as ``[{"image": path or [path per channel], "case": name}, ...]`` for a MONAI dataset.

    Args:
        dataset_dir: a folder (every file whose name ends with one of ``suffixes``, sorted by name; label maps named
            ``*.seg.nrrd`` are skipped), or a ``dataset.json`` whose ``list_key`` list holds the cases (paths
            relative to the JSON file's folder, as ``monai.data.load_decathlon_datalist`` reads them).
        suffixes: file name endings that count as images in a folder.
        list_key: the list to read from a ``dataset.json``.
        channels: files per case (one per input channel; an RGB picture is one file). With more than one, a folder is
            read in the MSD/nnU-Net layout: ``case_0000.nii.gz``, ``case_0001.nii.gz``, ... are the files of ``case``.

    Raises:
        ImageInputError: the path does not exist, or holds no image.
    """
    path = Path(dataset_dir)
    if path.is_file() and path.suffix == ".json":
        try:
            items = load_decathlon_datalist(str(path), is_segmentation=False, data_list_key=list_key)
        except (KeyError, ValueError) as error:
            raise ImageInputError(path, f"no '{list_key}' list of cases ({error})") from error
    elif path.is_dir():
        names = sorted(p for p in path.iterdir() if p.is_file() and not p.name.endswith(".seg.nrrd"))
        items = [{"image": str(p)} for p in names if p.name.lower().endswith(tuple(suffixes))]
        if channels > 1:
            return _channel_groups(path, [Path(item["image"]) for item in items], channels)
    else:
        raise ImageInputError(path, "no such folder or dataset.json", "Give a folder of images or a dataset.json")
    if not items:
        raise ImageInputError(path, f"no images found (looked for {', '.join(suffixes)})")
    return [{**item, "case": case_name(item["image"])} for item in items]


def _channel_groups(folder: Path, files: list[Path], channels: int) -> list[dict]:
    """``case_0000.ext``, ``case_0001.ext``, ... grouped per case, channels in order."""
    groups: dict[str, dict[int, Path]] = {}
    for file in files:
        match = CHANNEL_FILE.match(strip_image_suffix(file.name))
        if match is None:
            raise ImageInputError(
                file, f"is not named case_0000, case_0001, ... but this bundle takes {channels} channels per case"
            )
        groups.setdefault(match["case"], {})[int(match["channel"])] = file
    cases = []
    for case, found in sorted(groups.items()):
        if sorted(found) != list(range(channels)):
            raise ImageInputError(
                folder, f"case {case} has channels {sorted(found)}; this bundle takes {list(range(channels))}"
            )
        cases.append({"image": [str(found[c]) for c in range(channels)], "case": case})
    return cases
