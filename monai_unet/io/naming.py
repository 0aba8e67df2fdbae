"""How outputs are named: after the case, i.e. the input file without its image suffix (or the case's folder)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from monai_unet.io.image_file import FILE_SUFFIXES

__all__ = ["CHANNEL_FILE", "IMAGE_SUFFIXES", "case_name", "image_files", "output_name", "strip_image_suffix"]

#: A channel file in the MSD/nnU-Net layout: ``<case>_<4-digit channel>`` (after the image suffix is removed).
CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")

#: File name endings that are image formats (those the reader reads, Slicer's label maps and DICOM files), longest
#: first so that ``.nii.gz`` wins over ``.gz``-less ``.nii``.
IMAGE_SUFFIXES = tuple(sorted((*FILE_SUFFIXES, ".seg.nrrd", ".dcm"), key=len, reverse=True))


def image_files(folder: str | os.PathLike, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> list[Path]:
    """The image files directly in ``folder``, sorted by name: names ending with one of ``suffixes`` (any case),
    leaving out ``*.seg.nrrd`` label maps and hidden files (the ``._*`` copies macOS leaves in archives such as the
    Decathlon's)."""
    return sorted(
        p
        for p in Path(folder).iterdir()
        if p.is_file()
        and p.name.lower().endswith(tuple(suffixes))
        and not p.name.lower().endswith(".seg.nrrd")
        and not p.name.startswith(".")
    )


def strip_image_suffix(name: str) -> str:
    """``case01.nii.gz`` → ``case01``; a name without an image suffix (a DICOM folder) is returned as it is."""
    name = name.rstrip("/\\")
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def case_name(image: str | os.PathLike | Sequence[str | os.PathLike]) -> str:
    """The name outputs are written under: the file name without its image suffix; for one file per channel named
    in the MSD/nnU-Net way (``la_003_0000.nii.gz``, ``la_003_0001.nii.gz``), the shared case (``la_003``); for other
    channel files in a shared folder (``brats_2013_pat0004_1/Flair.nii.gz``, ``.../T1c.nii.gz``), that folder's name."""
    paths = [Path(image)] if isinstance(image, str | os.PathLike) else [Path(p) for p in image]
    if len(paths) > 1:
        matches = [CHANNEL_FILE.match(strip_image_suffix(p.name)) for p in paths]
        if all(matches) and len({m["case"] for m in matches}) == 1:
            return matches[0]["case"]
    if len(paths) > 1 and len({p.parent for p in paths}) == 1 and paths[0].parent.name:
        return paths[0].parent.name
    return strip_image_suffix(paths[0].name)


def output_name(meta: Mapping) -> str:
    """The case name recorded in a tensor's meta: ``case_name`` when set, else from ``filename_or_obj``.

    Raises:
        ValueError: the meta names no source (the reader's meta was dropped on the way).
    """
    if meta.get("case_name"):
        return str(meta["case_name"])
    source = meta.get("filename_or_obj")
    if isinstance(source, list | tuple):
        source = source[0] if source else None
    if not source:
        raise ValueError("the tensor's meta has no filename_or_obj to name the output after; keep the reader's meta")
    return strip_image_suffix(Path(str(source).rstrip("/\\")).name)
