"""The planned pipeline as config entries: the network, the deterministic preprocessing every config shares, the
training augmentation and the tiled inferer. :mod:`~monai_unet.plan.configs` writes them into the bundle's configs.
"""

from __future__ import annotations

from typing import Any

from monai_unet.plan.augmentation import patch_augmentation_steps
from monai_unet.plan.labels import class_of_value, label_mapping
from monai_unet.plan.recipe import Plan

__all__ = [
    "KEYS",
    "augmentation_steps",
    "label_steps",
    "network_def",
    "one_hot_steps",
    "preprocessing_steps",
    "tile_inferer",
]

KEYS = ["image", "label"]

#: Voxel locations kept per class for the foreground-oversampled crops (nnU-Net keeps 10,000).
LOCATIONS_PER_CLASS = 10000


def network_def(plan: Plan) -> dict[str, Any]:
    """The network as a config component (shared by every config)."""
    return {"_target_": "monai_unet.networks.UNet", **plan.network}


def _normalise(plan: Plan) -> dict[str, Any]:
    norm = plan.normalisation
    if norm["scheme"] == "ct":
        return {
            "_target_": "monai_unet.transforms.ClipZScored",
            "keys": "image",
            "clip": norm["clip"],
            "mean": norm["mean"],
            "std": norm["std"],
            "_desc_": "CT: clip to the dataset's foreground 0.5/99.5 percentiles, z-score with its foreground stats",
        }
    if norm["scheme"] == "rgb":
        return {
            "_target_": "ScaleIntensityRanged",
            "keys": "image",
            "a_min": 0.0,
            "a_max": 255.0,
            "b_min": 0.0,
            "b_max": 1.0,
            "_desc_": "8-bit RGB: each channel 0-255 to 0-1",
        }
    return {
        "_target_": "NormalizeIntensityd",
        "keys": "image",
        "nonzero": norm["nonzero"],
        "channel_wise": True,
        "_desc_": "per-case z-score per channel" + (" inside the nonzero region" if norm["nonzero"] else ""),
    }


def label_steps(plan: Plan, key: str, allow_missing_keys: bool = False) -> list[dict[str, Any]]:
    """From the loaded label file to classes ``0 .. C-1``: its channel axis (for label pictures, RGB-stored grey masks
    and JPEG, the one grey map they hold; palette pictures are loaded as their indices already), then a
    ``MapLabelValued`` from the files' values to classes (merged values to one class; the ignore label to the index
    past the classes) unless the files hold those classes already. Shared by training, validation and evaluation."""
    optional = {"allow_missing_keys": True} if allow_missing_keys else {}
    steps: list[dict[str, Any]] = []
    if not (plan.label_decoding.get("colour") or plan.label_decoding.get("lossy")):
        steps.append({"_target_": "EnsureChannelFirstd", "keys": key, "channel_dim": "no_channel", **optional})
    else:
        lossy = bool(plan.label_decoding.get("lossy"))
        steps += [
            {"_target_": "EnsureChannelFirstd", "keys": key, **optional},
            {
                "_target_": "monai_unet.transforms.PictureLabeld",
                "keys": key,
                "values": sorted(class_of_value(plan.label_values, plan.ignore_value)),
                "lossy": lossy,
                **optional,
                "_desc_": "label pictures: a grey mask stored as RGB to one channel"
                + ("; JPEG values to the nearest declared label value" if lossy else ""),
            },
        ]
    mapping = label_mapping(plan.label_values, plan.ignore_value)
    if mapping is not None:
        steps.append(
            {
                "_target_": "MapLabelValued",
                "keys": key,
                "orig_labels": mapping[0],
                "target_labels": mapping[1],
                **optional,
                "_desc_": "label values of the files to consecutive classes, background first (merged values to one "
                "class)",
            }
        )
    return steps


def one_hot_steps(plan: Plan, pred_key: str, label_key: str, argmax: bool = True) -> list[dict[str, Any]]:
    """The prediction (``argmax``: from probabilities) and the label as one-hot maps for the metrics. Shared by
    validation and evaluation.

    With an ignore label (index ``num_classes``, which cannot be one-hot encoded), the prediction and then the label
    are first set to the background where nobody annotated (MONAI's ``MaskIntensityd``, the label last so that it
    masks the prediction before itself): every foreground class keeps its true and false positives and negatives on
    the annotated voxels, so its Dice, HD95 and component check do not see the others (the background, which would
    count them as agreement, is left out of the mean)."""
    if plan.ignore_value is None:
        argmax_pair = {"argmax": [True, False]} if argmax else {}
        return [{"_target_": "AsDiscreted", "keys": [pred_key, label_key], **argmax_pair, "to_onehot": "@num_classes"}]
    return [
        *([{"_target_": "AsDiscreted", "keys": pred_key, "argmax": True}] if argmax else []),
        {
            "_target_": "MaskIntensityd",
            "keys": [pred_key, label_key],
            "mask_key": label_key,
            "select_fn": f"$lambda label: label != {plan.num_classes}",
            "_desc_": "unannotated voxels (the ignore label) count in no metric",
        },
        {"_target_": "AsDiscreted", "keys": [pred_key, label_key], "to_onehot": "@num_classes"},
    ]


def _load_step(keys: str | list[str], reader: dict[str, Any], what: str) -> dict[str, Any]:
    """A ``LoadImaged`` entry: ``keys`` read by ``reader`` (a config dict), missing keys allowed (inference has no
    label)."""
    return {
        "_target_": "LoadImaged",
        "keys": keys,
        "reader": reader,
        "image_only": True,
        "allow_missing_keys": True,
        "_desc_": what,
    }


def preprocessing_steps(plan: Plan) -> list[dict[str, Any]]:
    """Loading, label mapping, resampling, cropping and normalisation: the deterministic steps of every config.

    Steps touching ``label`` allow it to be missing (inference has none). Every spatial step is invertible, so
    ``Invertd`` returns a prediction to the input's own grid.
    """
    reader: dict[str, Any] = {"_target_": "monai_unet.io.SimpleITKReader", "resample": "@dicom_resample"}
    if plan.spatial_dims == 3 and plan.in_channels > 1:
        reader["allow_4d"] = True  # the channels may come as one 4D file (the Decathlon's multi-modal images)
    what = "one file (or DICOM folder) per channel, stacked; RGB pictures give 3 channels"
    if plan.label_decoding.get("palette"):  # labels are read with an option images must not have: two loaders
        indices = {**reader, "palette_indices": True}
        loading = [
            _load_step("image", reader, what),
            _load_step("label", indices, "label pictures with a colour palette give their palette indices (classes)"),
        ]
    else:
        loading = [_load_step(KEYS, reader, what)]
    steps: list[dict[str, Any]] = [
        *loading,
        {"_target_": "EnsureChannelFirstd", "keys": "image"},
        *label_steps(plan, "label", allow_missing_keys=True),
    ]
    if plan.target_spacing is not None:
        steps.append(
            {
                "_target_": "monai_unet.transforms.OrientSpacingd",
                "keys": KEYS,
                "pixdim": "@target_spacing",
                "allow_missing_keys": True,
            }
        )
    if plan.normalisation.get("scale", 1.0) != 1.0:
        steps.append(
            {
                "_target_": "Zoomd",
                "keys": KEYS,
                "zoom": plan.normalisation["scale"],
                "mode": ["bilinear", "nearest"],
                "keep_size": False,
                "allow_missing_keys": True,
                "_desc_": "pictures scaled down (inverted at inference, bilinear on the class probabilities)",
            }
        )
    if plan.normalisation["nonzero"]:
        steps.append(
            {
                "_target_": "CropForegroundd",
                "keys": KEYS,
                "source_key": "image",
                "select_fn": "$lambda x: x != 0",
                "margin": 0,
                "allow_smaller": True,
                "allow_missing_keys": True,
                "_desc_": "crop to the nonzero region (its z-score ignores the zero background)",
            }
        )
    steps.append(_normalise(plan))
    return steps


def augmentation_steps(plan: Plan) -> list[dict[str, Any]]:
    aug = plan.augmentation
    margin = aug["margin"]
    crop = [p + 2 * m for p, m in zip(plan.patch_size, margin, strict=True)]
    return [
        {
            "_target_": "SpatialPadd",
            "keys": KEYS,
            "spatial_size": crop,
            "_desc_": "cases smaller than a patch plus the deformation margin are padded",
        },
        {
            "_target_": "monai_unet.transforms.ClassLocationsd",
            "keys": "label",
            "num_classes": plan.num_classes,
            "max_per_class": LOCATIONS_PER_CLASS,
            "_desc_": "where each class lies, found once per case and cached (not on every crop)",
        },
        {
            "_target_": "RandCropByLabelClassesd",
            "keys": KEYS,
            "label_key": "label",
            "spatial_size": crop,
            "num_classes": plan.num_classes,
            "ratios": plan.sampling["class_ratios"],
            "num_samples": "@samples_per_case",
            "indices_key": "label_locations",
            "warn": False,
            "_desc_": "one patch in three centred on foreground (each class equally often), the rest anywhere",
        },
        {"_target_": "DeleteItemsd", "keys": "label_locations", "_desc_": "the locations are not batched"},
        *patch_augmentation_steps(aug),
    ]


def tile_inferer(plan: Plan, overlap: float, output: str, **extra: Any) -> dict[str, Any]:
    """Our ``OverlapTileInferer`` over tiles of the patch size, Gaussian blending (validation and inference)."""
    return {
        "_target_": "monai_unet.inferers.OverlapTileInferer",
        "roi_size": "@roi_size",
        "sw_batch_size": plan.inference["sw_batch_size"],
        "overlap": overlap,
        "mode": "gaussian",
        "output": output,
        **extra,
    }
