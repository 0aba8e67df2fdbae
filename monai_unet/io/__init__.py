"""Reading images with their geometry and writing segmentations that lie exactly on them."""

from __future__ import annotations

from monai_unet.io.dicom import DicomSeriesInfo, list_dicom_series, read_dicom_series
from monai_unet.io.errors import ImageInputError, OutputWriteError
from monai_unet.io.image_file import read_image_file
from monai_unet.io.load import LoadScan, LoadScand
from monai_unet.io.reader import SimpleITKReader
from monai_unet.io.save import SaveSegmentation, SaveSegmentationd
from monai_unet.io.writers import write_segmentation

__all__ = [
    "DicomSeriesInfo",
    "ImageInputError",
    "LoadScan",
    "LoadScand",
    "OutputWriteError",
    "SaveSegmentation",
    "SaveSegmentationd",
    "SimpleITKReader",
    "list_dicom_series",
    "read_dicom_series",
    "read_image_file",
    "write_segmentation",
]
