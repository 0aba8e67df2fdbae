"""A throw-away 3D bundle honouring the CLI's inference contract (``tests/test_cli_segment.py`` checks that
``monai-unet segment`` gives what ``python -m monai.bundle run`` gives with it).

``write_tiny_bundle`` is imported by the other ``test_cli_*`` files: a same-padding U-Net of two levels with random
(seeded) weights, CT window or MR z-score preprocessing, resampling to 4 mm and back (``Invertd``), so that a wrong
inverse would show up as a geometry mismatch, and outputs through ``SaveSegmentationd`` with the segment names and
colours of ``metadata.json``. It honours the contract ids ``bundle_root``, ``datalist``, ``output_dir``,
``output_ext``, ``output_postfix``, ``device``, ``precise``, ``save_probabilities``, ``progress``, ``ckpt_path``
and accepts ``tta_axes`` (mirroring is the real bundles' business).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from monai_unet.networks import UNet

LABEL_NAMES = {"0": "background", "1": "soft tissue", "2": "bone"}
LABEL_COLORS = {"1": [0.8, 0.4, 0.4], "2": [0.9, 0.9, 0.8]}
FEATURES = [4, 8]


def _metadata(channels: int) -> dict:
    return {
        "version": "0.0.1",
        "monai_version": "1.6.1",
        "name": "tiny test bundle",
        "task": "test fixture for the monai-unet command line",
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "hounsfield" if channels == 1 else "magnitude",
                    "num_channels": channels,
                    "spatial_shape": [16, 16, 16],
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": True,
                    "channel_def": {str(i): f"channel{i}" for i in range(channels)},
                }
            },
            "outputs": {
                "pred": {
                    "type": "image",
                    "format": "segmentation",
                    "num_channels": 3,
                    "spatial_shape": [16, 16, 16],
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": True,
                    "channel_def": LABEL_NAMES,
                    "label_colors": LABEL_COLORS,
                }
            },
        },
    }


def _inference_config(channels: int) -> dict:
    intensity = (
        {"_target_": "monai_unet.transforms.CTWindowd", "keys": "image", "preset": "abdomen"}
        if channels == 1
        else {"_target_": "monai_unet.transforms.ForegroundZScored", "keys": "image"}
    )
    names = "@_meta_#network_data_format#outputs#pred#channel_def"
    return {
        "imports": ["$import os", "$import torch"],
        "bundle_root": ".",
        "output_dir": "$@bundle_root + '/eval'",
        "datalist": [],
        "ckpt_path": "$@bundle_root + '/models/model.pt'",
        "output_ext": ".nii.gz",
        "output_postfix": "seg",
        "device": "$torch.device('cpu')",
        "tta_axes": [],
        "precise": False,
        "save_probabilities": False,
        "progress": False,
        "dicom_resample": False,
        "network_def": {
            "_target_": "monai_unet.networks.UNet",
            "spatial_dims": 3,
            "in_channels": channels,
            "out_channels": 3,
            "features": FEATURES,
            "padding": "same",
        },
        "network": "$@network_def.to(@device)",
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {
                    "_target_": "LoadImaged",
                    "keys": "image",
                    "reader": {
                        "_target_": "monai_unet.io.SimpleITKReader",
                        "resample": "@dicom_resample",
                        "allow_4d": channels > 1,  # the channels may come as one 4D file, as planned bundles read
                    },
                    "image_only": True,
                },
                {"_target_": "EnsureChannelFirstd", "keys": "image"},
                {"_target_": "monai_unet.transforms.OrientSpacingd", "keys": "image", "pixdim": [4.0, 4.0, 4.0]},
                intensity,
                {"_target_": "EnsureTyped", "keys": "image", "dtype": "$torch.float32"},
            ],
        },
        "dataset": {"_target_": "Dataset", "data": "@datalist", "transform": "@preprocessing"},
        "dataloader": {"_target_": "DataLoader", "dataset": "@dataset", "batch_size": 1, "num_workers": 0},
        "inferer": {
            "_target_": "SlidingWindowInferer",
            "roi_size": [16, 16, 16],
            "sw_batch_size": 4,
            "overlap": 0.25,
            "progress": "@progress",
        },
        "activation": {"_target_": "Activationsd", "keys": "pred", "softmax": True},
        "invert": {
            "_target_": "Invertd",
            "keys": "pred",
            "transform": "@preprocessing",
            "orig_keys": "image",
            "nearest_interp": False,
            "to_tensor": True,
        },
        "probability_saving": [
            {"_target_": "CopyItemsd", "keys": "pred", "names": "prob"},
            {
                "_target_": "SaveImaged",
                "keys": "prob",
                "output_dir": "@output_dir",
                "output_postfix": "prob",
                "separate_folder": False,
                "print_log": False,
            },
            {"_target_": "DeleteItemsd", "keys": "prob"},
        ],
        "labels": {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
        "save": {
            "_target_": "monai_unet.io.SaveSegmentationd",
            "keys": "pred",
            "output_dir": "@output_dir",
            "output_postfix": "@output_postfix",
            "output_ext": "@output_ext",
            "label_names": f"${{k: v for k, v in {names}.items() if k != '0'}}",
            "colors": "@_meta_#network_data_format#outputs#pred#label_colors",
        },
        "postprocessing": {
            "_target_": "Compose",
            "transforms": "$[@activation, @invert] + (@probability_saving if @save_probabilities else [])"
            " + [@labels, @save]",
        },
        "handlers": [
            {
                "_target_": "CheckpointLoader",
                "load_path": "@ckpt_path",
                "load_dict": {"model": "@network"},
                "map_location": "@device",
            }
        ],
        "evaluator": {
            "_target_": "SupervisedEvaluator",
            "device": "@device",
            "val_data_loader": "@dataloader",
            "network": "@network",
            "inferer": "@inferer",
            "postprocessing": "@postprocessing",
            "val_handlers": "@handlers",
        },
        "initialize": [
            "$torch.backends.cudnn.__setattr__('allow_tf32', not @precise)",
            "$os.makedirs(@output_dir, exist_ok=True)",
        ],
        "run": ["$@evaluator.run()"],
    }


def write_tiny_bundle(root: Path, channels: int = 1, seed: int = 0) -> Path:
    """Write the tiny bundle under ``root`` (configs, random weights); returns ``root``."""
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "configs" / "metadata.json").write_text(json.dumps(_metadata(channels), indent=2))
    (root / "configs" / "inference.json").write_text(json.dumps(_inference_config(channels), indent=2))
    torch.manual_seed(seed)
    net = UNet(spatial_dims=3, in_channels=channels, out_channels=3, features=FEATURES, padding="same")
    torch.save(net.state_dict(), root / "models" / "model.pt")
    return root
