"""Reading images with their geometry and writing segmentations that lie exactly on them.

The names below are imported on first use (PEP 562), so that light modules such as :mod:`monai_unet.io.formats`
can be imported (by the command line, at start-up) without loading torch, MONAI and SimpleITK.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name → the submodule that defines it
_WHERE = {
    "DicomSeriesInfo": "dicom",
    "list_dicom_series": "dicom",
    "read_dicom_header": "dicom",
    "read_dicom_series": "dicom",
    "ImageInputError": "errors",
    "OutputWriteError": "errors",
    "read_image_file": "image_file",
    "ImageHeader": "image_header",
    "read_image_header": "image_header",
    "LoadScan": "load",
    "LoadScand": "load",
    "SimpleITKReader": "reader",
    "SavePrediction": "save",
    "SavePredictiond": "save",
    "SaveSegmentation": "save",
    "SaveSegmentationd": "save",
    "write_probabilities": "writers",
    "write_segmentation": "writers",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
