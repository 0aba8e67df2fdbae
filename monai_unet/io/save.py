"""MONAI-style save transforms that write predictions through :func:`~monai_unet.io.writers.write_segmentation`.

Use them where a bundle would use ``SaveImaged``, after ``Invertd`` has brought the prediction back to the source
grid (its ``MetaTensor`` then carries the source affine, and the reader's meta: ``filename_or_obj`` and, for DICOM,
``source_files``)::

    {"_target_": "monai_unet.io.SaveSegmentationd", "keys": "pred", "output_dir": "$@output_dir",
     "output_ext": ".seg.nrrd", "label_names": {"1": "spleen"}}

File names: ``<output_dir>/<source name>_<output_postfix><output_ext>``, where the source name is the input file
without its image suffix (``case01.nii.gz`` → ``case01``) or the DICOM folder's name. For ``output_ext="dicomseg"``
the target is the directory ``<output_dir>/<source name>_<output_postfix>/`` holding ``segmentation.dcm``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from os import PathLike
from pathlib import Path

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform

from monai_unet.io.naming import output_name
from monai_unet.io.writers import write_segmentation

__all__ = ["OUTPUT_EXTENSIONS", "SaveSegmentation", "SaveSegmentationd"]

#: Accepted ``output_ext`` values: NIfTI, 3D Slicer segmentation, DICOM SEG (a directory).
OUTPUT_EXTENSIONS = (".nii.gz", ".nii", ".seg.nrrd", "dicomseg")


class SaveSegmentation(Transform):
    """Write one label map (``MetaTensor``, channel-first ``(1, *spatial)`` or ``(*spatial)``) on its own grid.

    Args:
        output_dir: folder for the outputs (must exist).
        output_postfix: appended to the source name, after an underscore.
        output_ext: one of :data:`OUTPUT_EXTENSIONS`; ``"dicomseg"`` needs a prediction read from DICOM.
        label_names: label value → segment name (``.seg.nrrd``, DICOM SEG).
        colors: label value → RGB in [0, 1] (``.seg.nrrd``, DICOM SEG).
        terminology: label value → SNOMED CT category, type and region (``.seg.nrrd``, DICOM SEG), as in the
            bundle's ``metadata.json`` (:mod:`monai_unet.io.terminology`).

    Returns the input unchanged, with ``meta["saved_to"]`` set to the written file.
    """

    def __init__(
        self,
        output_dir: str | PathLike = ".",
        output_postfix: str = "seg",
        output_ext: str = ".nii.gz",
        label_names: Mapping[int | str, str] | None = None,
        colors: Mapping[int | str, Sequence[float]] | None = None,
        terminology: Mapping[int | str, Mapping] | None = None,
    ) -> None:
        if output_ext not in OUTPUT_EXTENSIONS:
            raise ValueError(f"output_ext {output_ext!r} is not one of {OUTPUT_EXTENSIONS}")
        self.output_dir = Path(output_dir)
        self.output_postfix = output_postfix
        self.output_ext = output_ext
        self.label_names = label_names
        self.colors = colors
        self.terminology = terminology

    def output_path(self, meta: Mapping) -> Path:
        """Where the prediction with this meta is written."""
        stem = output_name(meta) + (f"_{self.output_postfix}" if self.output_postfix else "")
        return self.output_dir / (stem if self.output_ext == "dicomseg" else stem + self.output_ext)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if not isinstance(img, MetaTensor):
            raise TypeError("SaveSegmentation needs a MetaTensor (its affine places the labels in the patient)")
        written = write_segmentation(
            img, None, self.output_path(img.meta), self.label_names, self.colors, terminology=self.terminology
        )
        img.meta["saved_to"] = str(written)
        return img


class SaveSegmentationd(MapTransform):
    """Dictionary wrapper of :class:`SaveSegmentation`: write the label map under each key (e.g. ``"pred"``).

    ``name_key``: optional data key holding the case name to write under (e.g. ``"case"`` from
    :func:`~monai_unet.io.datalist.list_inputs`, needed when every case's files share names, as in BRATS folders);
    by default the name comes from the prediction's ``filename_or_obj``.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: str | PathLike = ".",
        output_postfix: str = "seg",
        output_ext: str = ".nii.gz",
        label_names: Mapping[int | str, str] | None = None,
        colors: Mapping[int | str, Sequence[float]] | None = None,
        terminology: Mapping[int | str, Mapping] | None = None,
        name_key: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.saver = SaveSegmentation(output_dir, output_postfix, output_ext, label_names, colors, terminology)
        self.name_key = name_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            if self.name_key is not None:
                d[key].meta["case_name"] = str(d[self.name_key])
            d[key] = self.saver(d[key])
        return d
