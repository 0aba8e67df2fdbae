"""The cases a config reads, from ``dataset_dir``: a folder, or an MSD-style ``dataset.json`` whose relative paths are
resolved against the JSON's own folder (the same meaning in train, evaluate and inference configs).

- :func:`list_inputs`: the cases to segment (inference): a folder of images, or the JSON's ``test`` list.
- :func:`split_datalist`: one side of a bundle's ``configs/split.json`` (training, evaluation), or for evaluation a
  ``test`` list with labels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from monai.data import load_decathlon_datalist

from monai_unet.io.errors import ImageInputError
from monai_unet.io.image_file import FILE_SUFFIXES, channels_in_file
from monai_unet.io.naming import CHANNEL_FILE, case_name, image_files, strip_image_suffix

__all__ = ["list_inputs", "split_datalist"]


def list_inputs(
    dataset_dir: str | os.PathLike,
    suffixes: Sequence[str] = FILE_SUFFIXES,
    list_key: str = "test",
    channels: int = 1,
) -> list[dict]:
    """The cases to segment, as ``[{"image": path or [path per channel], "case": name}, ...]`` for a MONAI dataset.

    Args:
        dataset_dir: a folder (every file whose name ends with one of ``suffixes``, sorted by name; label maps named
            ``*.seg.nrrd`` and hidden files, such as the ``._*`` copies macOS leaves in the Decathlon's archives, are
            skipped; a dataset folder holding no image itself but ``imagesTs/``, as MSD and nnU-Net lay them out,
            gives the images in ``imagesTs/``), or a ``dataset.json`` whose ``list_key`` list holds the cases (paths
            relative to the JSON file's folder, as ``monai.data.load_decathlon_datalist`` reads them).
        suffixes: file name endings that count as images in a folder.
        list_key: the list to read from a ``dataset.json``.
        channels: channels per case. With more than one, a folder is one case per file when every file holds them
            all (RGB pictures, 4D files: :func:`~monai_unet.io.image_file.channels_in_file`), else read in the
            MSD/nnU-Net layout: ``case_0000.nii.gz``, ``case_0001.nii.gz``, ... are the files of ``case``. One file
            per case is named after the file (``case_0000.nii.gz`` → ``case_0000``, the name ``infer`` promises).

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
        files = image_files(path, suffixes)
        if not files and (path / "imagesTs").is_dir():  # an MSD/nnU-Net dataset folder: its test images
            path = path / "imagesTs"
            files = image_files(path, suffixes)
        items = [{"image": str(p)} for p in files]
        if channels > 1 and not (files and all(channels_in_file(f) == channels for f in files)):
            return _channel_groups(path, files, channels)
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


def split_datalist(
    split_file: str | os.PathLike, side: str, dataset_dir: str | os.PathLike, test_list: bool = False
) -> list[dict]:
    """The cases of one ``side`` (``"training"``, ``"validation"``) of a bundle's split, with absolute paths.

    Args:
        split_file: the bundle's ``configs/split.json`` (MSD-shaped lists, paths relative to the dataset's folder).
        side: the list to read.
        dataset_dir: the dataset's folder, or its ``dataset.json`` (the paths are then relative to the JSON's folder).
        test_list: for evaluation: when ``dataset_dir`` is a ``dataset.json`` whose ``test`` list gives a label for
            every case, score those cases instead of the split's (never used for training or model selection).

    Raises:
        ImageInputError: ``dataset_dir`` is neither a folder nor a ``.json`` file.
    """
    path = Path(dataset_dir)
    if path.is_file() and path.suffix.lower() == ".json":
        if test_list:
            try:
                test = json.loads(path.read_text()).get("test")
            except (OSError, ValueError, AttributeError) as error:
                raise ImageInputError(path, f"is not an MSD-style dataset.json ({error})") from error
            if test and all(isinstance(item, dict) and "label" in item for item in test):
                return load_decathlon_datalist(str(path), True, "test")
        base = path.parent
    elif path.is_dir():
        base = path
    else:
        raise ImageInputError(path, "no such folder or dataset.json", "Give the dataset's folder or its dataset.json")
    return load_decathlon_datalist(str(split_file), True, side, str(base))
