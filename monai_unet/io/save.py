"""MONAI-style save transforms for predictions on their source grid: label maps and probabilities, every format.

Use them where a bundle would use ``SaveImaged``, after ``Invertd`` has brought the prediction back to the source
grid (its ``MetaTensor`` then carries the source affine, and the reader's meta: ``filename_or_obj`` and, for DICOM,
``source_files``)::

    {"_target_": "monai_unet.io.SavePredictiond", "keys": "pred", "output_dir": "$@output_dir",
     "output_ext": ".seg.nrrd", "label_names": {"1": "spleen"}, "name_key": "case"}
    {"_target_": "monai_unet.io.SavePredictiond", "keys": "probabilities", "output_dir": "$@output_dir",
     "output_postfix": "prob", "output_ext": ".nii.gz", "probabilities": true, "name_key": "case"}

File names: ``<output_dir>/<case>_<output_postfix><output_ext>``, where the case is the ``name_key`` item of the data
when given, else the source name: the input file without its image suffix (``case01.nii.gz`` → ``case01``) or the
DICOM folder's name. ``output_ext`` is a key of :mod:`monai_unet.io.formats`; for ``"dicomseg"`` the target is the
folder ``<output_dir>/<case>_<output_postfix>/`` holding ``segmentation.dcm``. Every written path is recorded in the
prediction's meta as ``saved_to`` (as MONAI's ``SaveImage`` does with ``savepath_in_metadict``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from os import PathLike
from pathlib import Path

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform

from monai_unet.io.formats import find_format
from monai_unet.io.naming import output_name
from monai_unet.io.writers import write_probabilities, write_segmentation

__all__ = ["SavePrediction", "SavePredictiond", "SaveSegmentation", "SaveSegmentationd"]


class SavePrediction(Transform):
    """Write one prediction (``MetaTensor``) on its own grid: a label map ``(1, *spatial)``/``(*spatial)``, or with
    ``probabilities=True`` float maps ``(C, *spatial)``.

    Args:
        output_dir: folder for the outputs (must exist).
        output_postfix: appended to the case name, after an underscore.
        output_ext: a format key of :mod:`monai_unet.io.formats` that holds labels (``.nii.gz``, ``.nii``,
            ``.seg.nrrd``, ``dicomseg``, ``.png``) or, with ``probabilities``, float maps (``.nii.gz``, ``.nii``,
            ``.tif``); ``"dicomseg"`` needs a prediction read from DICOM, ``.png``/``.tif`` a 2D one.
        label_names: label value → segment name (``.seg.nrrd``, DICOM SEG).
        colors: label value → RGB in [0, 1] (``.seg.nrrd``, DICOM SEG).
        terminology: label value → SNOMED CT category, type and region (``.seg.nrrd``, DICOM SEG), as in the
            bundle's ``metadata.json`` (:mod:`monai_unet.io.terminology`).
        probabilities: write float maps instead of a label map.

    Returns the input unchanged, with ``meta["saved_to"]`` set to the written file.

    Raises:
        ValueError: ``output_ext`` is no format for what is written (at construction, before any inference).
    """

    def __init__(
        self,
        output_dir: str | PathLike = ".",
        output_postfix: str = "seg",
        output_ext: str = ".nii.gz",
        label_names: Mapping[int | str, str] | None = None,
        colors: Mapping[int | str, Sequence[float]] | None = None,
        terminology: Mapping[int | str, Mapping] | None = None,
        probabilities: bool = False,
    ) -> None:
        self.format = find_format(output_ext)
        if self.format is None or self.format.key != output_ext or not self.format.holds(probabilities):
            what = "probabilities" if probabilities else "labels"
            raise ValueError(f"output_ext {output_ext!r} is not a format key for {what} (monai_unet.io.formats)")
        self.output_dir = Path(output_dir)
        self.output_postfix = output_postfix
        self.label_names = label_names
        self.colors = colors
        self.terminology = terminology
        self.probabilities = probabilities

    def output_path(self, meta: Mapping) -> Path:
        """Where the prediction with this meta is written."""
        stem = output_name(meta) + (f"_{self.output_postfix}" if self.output_postfix else "")
        return self.output_dir / self.format.name_for(stem)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if not isinstance(img, MetaTensor):
            raise TypeError("SavePrediction needs a MetaTensor (its affine places the prediction in the patient)")
        if self.probabilities:
            written = write_probabilities(img, None, self.output_path(img.meta))
        else:
            written = write_segmentation(
                img, None, self.output_path(img.meta), self.label_names, self.colors, terminology=self.terminology
            )
        img.meta["saved_to"] = str(written)
        return img


class SavePredictiond(MapTransform):
    """Dictionary wrapper of :class:`SavePrediction`: write the prediction under each key (``"pred"``,
    ``"probabilities"``).

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
        probabilities: bool = False,
        name_key: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.saver = SavePrediction(
            output_dir, output_postfix, output_ext, label_names, colors, terminology, probabilities
        )
        self.name_key = name_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            if self.name_key is not None:
                d[key].meta["case_name"] = str(d[self.name_key])
            d[key] = self.saver(d[key])
        return d


#: The names of 0.5 and before (label maps only), kept for bundles written against them.
SaveSegmentation = SavePrediction
SaveSegmentationd = SavePredictiond
