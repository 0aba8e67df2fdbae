"""The one table of output formats: which name means which file, what the file can hold, and whether it is a folder.

``output_ext`` in a bundle's inference config, ``-o``/``--format``/``--probabilities`` of ``monai-unet segment``,
:class:`~monai_unet.io.SavePredictiond` and :func:`~monai_unet.io.write_segmentation` all look formats up here:

=============  ==================  ==========================================================  ======  =============
``key``        suffixes            file                                                        labels  probabilities
=============  ==================  ==========================================================  ======  =============
``.nii.gz``    ``.nii.gz``         NIfTI-1, gzip; labels uint8/uint16, probabilities float32    yes     yes
``.nii``       ``.nii``            NIfTI-1, uncompressed                                        yes     yes
``.seg.nrrd``  ``.seg.nrrd``       3D Slicer segmentation (one layer, segment names, colours)   yes     no
``dicomseg``   (a folder)          DICOM SEG ``segmentation.dcm`` referencing the source series  yes     no
``.png``       ``.png``            one 2D slice, class indices as 8-bit grey levels             yes     no
``.tif``       ``.tif``, ``.tiff``  one 2D slice, float32 (one sample per foreground class)      no      yes
=============  ==================  ==========================================================  ======  =============

A name that ends in none of the suffixes and has no suffix at all (or an existing folder) is a DICOM SEG folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

__all__ = ["LABEL_FORMATS", "OUTPUT_FORMATS", "OutputFormat", "find_format"]


@dataclass(frozen=True)
class OutputFormat:
    """One row of the table (see the module docstring).

    Attributes:
        key: the ``output_ext`` value that selects it.
        suffixes: file-name endings that select it (lower case); empty for the folder format.
        description: a few words for messages and ``--help``.
        folder: written as a folder (DICOM SEG) rather than one file.
        labels: can hold an integer label map.
        probabilities: can hold float probabilities.
        planar: holds one 2D slice and no geometry.
    """

    key: str
    suffixes: tuple[str, ...]
    description: str
    folder: bool = False
    labels: bool = True
    probabilities: bool = False
    planar: bool = False

    def holds(self, probabilities: bool = False) -> bool:
        """Whether this format can hold a label map (or, with ``probabilities``, float maps)."""
        return self.probabilities if probabilities else self.labels

    def name_for(self, stem: str) -> str:
        """The file (or folder) name for ``stem``: ``case_seg`` → ``case_seg.nii.gz`` (a DICOM SEG: ``case_seg``)."""
        return stem if self.folder else stem + self.key


OUTPUT_FORMATS: tuple[OutputFormat, ...] = (
    OutputFormat(".nii.gz", (".nii.gz",), "NIfTI", probabilities=True),
    OutputFormat(".nii", (".nii",), "NIfTI, uncompressed", probabilities=True),
    OutputFormat(".seg.nrrd", (".seg.nrrd",), "3D Slicer segmentation"),
    OutputFormat("dicomseg", (), "DICOM SEG folder", folder=True),
    OutputFormat(".png", (".png",), "PNG picture of one slice", planar=True),
    OutputFormat(".tif", (".tif", ".tiff"), "float32 TIFF of one slice", labels=False, probabilities=True, planar=True),
)

#: ``output_ext`` values that hold a label map, in the order they are offered.
LABEL_FORMATS: tuple[str, ...] = tuple(f.key for f in OUTPUT_FORMATS if f.labels)


def find_format(value: str | PathLike) -> OutputFormat | None:
    """The format an ``output_ext`` value or an output path names, else None (``.nrrd``, ``.mha``, ``.dcm``, ...).

    A key (``".nii.gz"``, ``"dicomseg"``) selects its row; a path selects by its ending (``.seg.nrrd`` before
    ``.nrrd``-less rows, so the longest suffix wins); a path without a suffix, or an existing folder, is a DICOM SEG
    folder.
    """
    text = str(value)
    for row in OUTPUT_FORMATS:
        if text == row.key:
            return row
    name = Path(text).name.lower()
    for row in sorted(OUTPUT_FORMATS, key=lambda r: -max((len(s) for s in r.suffixes), default=0)):
        if any(name.endswith(suffix) for suffix in row.suffixes):
            return row
    if Path(text).is_dir() or not Path(name).suffix:
        return next(row for row in OUTPUT_FORMATS if row.folder)
    return None
