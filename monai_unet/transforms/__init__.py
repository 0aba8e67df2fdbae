"""Transforms: preprocessing with exact inverses, the paper's augmentation and border weight map (array + dict)."""

from __future__ import annotations

from monai_unet.transforms.class_locations import ClassLocations, ClassLocationsd
from monai_unet.transforms.elastic import RandElasticGrid
from monai_unet.transforms.elastic_dict import RandElasticGridd
from monai_unet.transforms.intensity import (
    CT_WINDOWS,
    ClipZScore,
    ClipZScored,
    CTWindow,
    CTWindowd,
    ForegroundZScore,
    ForegroundZScored,
)
from monai_unet.transforms.picture_label import PictureLabel, PictureLabeld
from monai_unet.transforms.spatial import CheckGeometryd, OrientSpacingd
from monai_unet.transforms.weight_map import BorderWeightMap, BorderWeightMapd

__all__: list[str] = [
    "CT_WINDOWS",
    "BorderWeightMap",
    "BorderWeightMapd",
    "CTWindow",
    "CTWindowd",
    "CheckGeometryd",
    "ClassLocations",
    "ClassLocationsd",
    "ClipZScore",
    "ClipZScored",
    "ForegroundZScore",
    "ForegroundZScored",
    "OrientSpacingd",
    "PictureLabel",
    "PictureLabeld",
    "RandElasticGrid",
    "RandElasticGridd",
]
