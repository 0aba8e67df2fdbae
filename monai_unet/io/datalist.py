"""Inference inputs: a folder of images, or an MSD-style ``dataset.json`` with a ``test`` list."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from monai.data import load_decathlon_datalist

from monai_unet.io.errors import ImageInputError
from monai_unet.io.naming import case_name

__all__ = ["list_inputs"]

DEFAULT_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".png", ".tif", ".tiff")


def list_inputs(
    dataset_dir: str | os.PathLike, suffixes: Sequence[str] = DEFAULT_SUFFIXES, list_key: str = "test"
) -> list[dict]:
    """The cases to segment, as ``[{"image": path or [path per channel], "case": name}, ...]`` for a MONAI dataset.

    Args:
        dataset_dir: a folder (every file whose name ends with one of ``suffixes``, sorted by name; label maps named
            ``*.seg.nrrd`` are skipped), or a ``dataset.json`` whose ``list_key`` list holds the cases (paths
            relative to the JSON file's folder, as ``monai.data.load_decathlon_datalist`` reads them).
        suffixes: file name endings that count as images in a folder.
        list_key: the list to read from a ``dataset.json``.

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
    else:
        raise ImageInputError(path, "no such folder or dataset.json", "Give a folder of images or a dataset.json")
    if not items:
        raise ImageInputError(path, f"no images found (looked for {', '.join(suffixes)})")
    return [{**item, "case": case_name(item["image"])} for item in items]
