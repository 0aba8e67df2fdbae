"""The bundle's configs as Python dicts: train, evaluate (overrides train), inference, multi-GPU (overrides train).

The train, evaluate and inference configs share one definition of the network (:func:`network_def`) and of the
preprocessing (:func:`preprocessing_steps`), written into every config that needs them; a test checks that the
written copies are equal, so train and inference cannot drift apart.
"""

from __future__ import annotations

import json
from typing import Any

from monai_unet.plan.dataset import PlanDataset
from monai_unet.plan.recipe import Plan

__all__ = [
    "evaluate_config",
    "inference_config",
    "multi_gpu_config",
    "network_def",
    "preprocessing_steps",
    "train_config",
]

_IMPORTS = [
    "$import os",
    "$import torch",
    "$import monai",
    "$from monai_unet.plan import read_plans",
    "$from monai_unet.plan import record_training",
]
_KEYS = ["image", "label"]


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


def preprocessing_steps(plan: Plan) -> list[dict[str, Any]]:
    """Loading, label mapping, resampling, cropping and normalisation: the deterministic steps of every config.

    Steps touching ``label`` allow it to be missing (inference has none). Every spatial step is invertible, so
    ``Invertd`` returns a prediction to the input's own grid.
    """
    steps: list[dict[str, Any]] = [
        {
            "_target_": "LoadImaged",
            "keys": _KEYS,
            "reader": {"_target_": "monai_unet.io.SimpleITKReader"},
            "image_only": True,
            "allow_missing_keys": True,
            "_desc_": "one file (or DICOM folder) per channel, stacked; RGB pictures give 3 channels",
        },
        {"_target_": "EnsureChannelFirstd", "keys": "image"},
        {"_target_": "EnsureChannelFirstd", "keys": "label", "channel_dim": "no_channel", "allow_missing_keys": True},
    ]
    if plan.label_values != list(range(plan.num_classes)):
        steps.append(
            {
                "_target_": "MapLabelValued",
                "keys": "label",
                "orig_labels": plan.label_values,
                "target_labels": list(range(plan.num_classes)),
                "allow_missing_keys": True,
                "_desc_": "label values of the files to consecutive classes, background first",
            }
        )
    if plan.target_spacing is not None:
        steps.append(
            {
                "_target_": "monai_unet.transforms.OrientSpacingd",
                "keys": _KEYS,
                "pixdim": "@target_spacing",
                "allow_missing_keys": True,
            }
        )
    if plan.normalisation.get("scale", 1.0) != 1.0:
        steps.append(
            {
                "_target_": "Zoomd",
                "keys": _KEYS,
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
                "keys": _KEYS,
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


def _augmentation(plan: Plan) -> list[dict[str, Any]]:
    aug = plan.augmentation
    margin = aug["margin"]
    crop = [p + 2 * m for p, m in zip(plan.patch_size, margin, strict=True)]
    foreground = plan.num_classes - 1
    return [
        {
            "_target_": "SpatialPadd",
            "keys": _KEYS,
            "spatial_size": crop,
            "_desc_": "cases smaller than a patch plus the deformation margin are padded",
        },
        {
            "_target_": "RandCropByLabelClassesd",
            "keys": _KEYS,
            "label_key": "label",
            "spatial_size": crop,
            "num_classes": plan.num_classes,
            "ratios": [1.0] + [2.0 / foreground] * foreground,
            "num_samples": "@samples_per_case",
            "warn": False,
            "_desc_": "two of three patches centred on foreground (each class equally often), one on background",
        },
        {
            "_target_": "monai_unet.transforms.RandElasticGridd",
            "keys": _KEYS,
            "mode": ["bilinear", "nearest"],
            "prob": 1.0,
            "num_control_points": aug["num_control_points"],
            "sigma": aug["elastic_sigma_voxels"],
            "rotate_range": aug["rotate_range"],
            "zoom_range": aug["zoom_range"],
            "flip_axes": aug["flip_axes"],
            "spatial_size": "@patch_size",
            "padding_mode": "reflection",
            "_desc_": "elastic deformation, rotation, zoom and flips in one resampling; crops the margin away",
        },
        {"_target_": "RandScaleIntensityd", "keys": "image", "factors": 0.25, "prob": 0.15},
        {"_target_": "RandShiftIntensityd", "keys": "image", "offsets": 0.1, "prob": 0.15},
        {"_target_": "RandAdjustContrastd", "keys": "image", "gamma": [0.7, 1.5], "prob": 0.3},
        {"_target_": "RandGaussianNoised", "keys": "image", "std": 0.1, "prob": 0.1},
    ]


def _one_hot_pair(pred_key: str, label_key: str) -> dict[str, Any]:
    return {
        "_target_": "AsDiscreted",
        "keys": [pred_key, label_key],
        "argmax": [True, False],
        "to_onehot": "@num_classes",
    }


def _common(plan: Plan, dataset: PlanDataset) -> dict[str, Any]:
    """The ids every config starts with (top of the file)."""
    config: dict[str, Any] = {
        "imports": list(_IMPORTS),
        "bundle_root": ".",
        "dataset_dir": str(dataset.root),
        "device": f"$torch.device('{plan.device}' if '{plan.device}' == 'cpu' or torch.cuda.is_available() else 'cpu')",
        "num_classes": plan.num_classes,
        "patch_size": plan.patch_size,
        "roi_size": "@patch_size",
    }
    if plan.target_spacing is not None:
        config["target_spacing"] = plan.target_spacing
    config["network_def"] = network_def(plan)
    config["network"] = "$@network_def.to(@device)"
    config["preprocessing_steps"] = preprocessing_steps(plan)
    return config


def train_config(plan: Plan, dataset: PlanDataset) -> dict[str, Any]:
    """``configs/train.json``."""
    budget = plan.budget
    loader_batch = max(1, plan.batch_size // plan.samples_per_case)
    config = _common(plan, dataset)
    config["imports"] = [*config["imports"], "$from ignite.engine import Events"]
    config.update(
        {
            "split_file": "$os.path.join(@bundle_root, 'configs', 'split.json')",
            "ckpt_dir": "$os.path.join(@bundle_root, 'models')",
            "output_dir": "$os.path.join(@bundle_root, 'runs')",
            "seed": plan.seed,
            "resume": False,
            "progress": False,
            "budget_minutes": budget["minutes"],
            "epoch_length": budget["epoch_length"],
            "val_interval": 1,
            "max_epochs": 100000,
            "batch_size": plan.batch_size,
            "samples_per_case": plan.samples_per_case,
            "learning_rate": plan.optimiser["lr"],
            "cache_rate": plan.budget.get("cache_rate", 1.0),
            "num_workers": 0 if plan.device == "cpu" else 4,
            "loss": {
                "_target_": "DiceCELoss",
                "to_onehot_y": True,
                "softmax": True,
                "include_background": plan.loss["include_background"],
                "batch": plan.loss["batch"],
            },
            "optimizer": {
                "_target_": "torch.optim.Adam",
                "params": "$@network.parameters()",
                "lr": "@learning_rate",
                "weight_decay": plan.optimiser["weight_decay"],
            },
            "budget": {
                "_target_": "monai_unet.handlers.TimeBudget",
                "budget_s": "$@budget_minutes * 60",
                "optimizer": "@optimizer",
                "validator": "@validate#evaluator",
                "power": plan.optimiser["poly_power"],
                "validation_estimate_s": budget["validation_estimate_s"],
                "summary_path": "$os.path.join(@output_dir, 'training_summary.json')",
                "_desc_": "the learning rate decays with elapsed time and reaches 0 when the budget ends",
            },
            "train": {
                "preprocessing": {
                    "_target_": "Compose",
                    "transforms": "$@preprocessing_steps + @train#augmentation",
                },
                "augmentation": _augmentation(plan),
                "dataset": {
                    "_target_": "CacheDataset",
                    "data": "$monai.data.load_decathlon_datalist(@split_file, True, 'training', @dataset_dir)",
                    "transform": "@train#preprocessing",
                    "cache_rate": "@cache_rate",
                    "num_workers": "@num_workers",
                },
                "sampler": {
                    "_target_": "torch.utils.data.RandomSampler",
                    "data_source": "@train#dataset",
                    "replacement": True,
                    "num_samples": f"$@epoch_length * {loader_batch}",
                    "_desc_": "an epoch is epoch_length iterations, whatever the number of cases",
                },
                "dataloader": {
                    "_target_": "DataLoader",
                    "dataset": "@train#dataset",
                    "sampler": "@train#sampler",
                    "batch_size": loader_batch,
                    "num_workers": "@num_workers",
                    "_desc_": "cases per step; each gives samples_per_case patches, so a step holds batch_size",
                },
                "inferer": {"_target_": "SimpleInferer"},
                "checkpoint": {
                    "_target_": "monai_unet.handlers.TrainingCheckpoint",
                    "save_dir": "@output_dir",
                    "save_dict": {
                        "network": "@network",
                        "optimizer": "@optimizer",
                        "trainer": "@train#trainer",
                        "history": "@validate#history",
                        "budget": "@budget",
                    },
                    "save_interval": 1,
                    "resume": "@resume",
                },
                "handlers": [
                    {
                        "_target_": "ValidationHandler",
                        "validator": "@validate#evaluator",
                        "epoch_level": True,
                        "interval": "@val_interval",
                    },
                    {
                        "_target_": "StatsHandler",
                        "tag_name": "train_loss",
                        "output_transform": "$monai.handlers.from_engine(['loss'], first=True)",
                    },
                    {"_target_": "ignite.handlers.ProgressBar", "persist": False, "_disabled_": "$not @progress"},
                ],
                "trainer": {
                    "_target_": "SupervisedTrainer",
                    "max_epochs": "@max_epochs",
                    "device": "@device",
                    "train_data_loader": "@train#dataloader",
                    "network": "@network",
                    "loss_function": "@loss",
                    "optimizer": "@optimizer",
                    "inferer": "@train#inferer",
                    "train_handlers": "@train#handlers",
                    "amp": False,
                },
            },
            "validate": {
                "preprocessing": {"_target_": "Compose", "transforms": "@preprocessing_steps"},
                "dataset": {
                    "_target_": "CacheDataset",
                    "data": "$monai.data.load_decathlon_datalist(@split_file, True, 'validation', @dataset_dir)",
                    "transform": "@validate#preprocessing",
                    "cache_rate": "@cache_rate",
                    "num_workers": "@num_workers",
                },
                "dataloader": {
                    "_target_": "DataLoader",
                    "dataset": "@validate#dataset",
                    "batch_size": 1,
                    "shuffle": False,
                    "num_workers": "@num_workers",
                },
                "inferer": {
                    "_target_": "monai_unet.inferers.OverlapTileInferer",
                    "roi_size": "@roi_size",
                    "sw_batch_size": plan.inference["sw_batch_size"],
                    "overlap": plan.inference["validation_overlap"],
                    "mode": "gaussian",
                    "output": "logits",
                    "_desc_": "a smaller overlap than at inference keeps validation cheap inside the budget",
                },
                "postprocessing": {
                    "_target_": "Compose",
                    "transforms": [
                        {"_target_": "Activationsd", "keys": "pred", "softmax": True},
                        _one_hot_pair("pred", "label"),
                    ],
                },
                "components": {
                    "_target_": "monai_unet.handlers.ComponentChoice",
                    "num_classes": "@num_classes",
                    "_desc_": "per-class Dice with and without keeping the largest component, for the post-processing",
                },
                "history": {
                    "_target_": "monai_unet.handlers.ValidationHistory",
                    "network": "@network",
                    "key_metric": "val_mean_dice",
                    "best_path": "$os.path.join(@ckpt_dir, 'model.pt')",
                    "csv_path": "$os.path.join(@output_dir, 'validation_history.csv')",
                },
                "handlers": [
                    "@validate#components",
                    "@validate#history",
                    {"_target_": "StatsHandler", "iteration_log": False},
                ],
                "key_metric": {
                    "val_mean_dice": {
                        "_target_": "MeanDice",
                        "include_background": False,
                        "output_transform": "$monai.handlers.from_engine(['pred', 'label'])",
                    }
                },
                "evaluator": {
                    "_target_": "SupervisedEvaluator",
                    "device": "@device",
                    "val_data_loader": "@validate#dataloader",
                    "network": "@network",
                    "inferer": "@validate#inferer",
                    "postprocessing": "@validate#postprocessing",
                    "key_val_metric": "@validate#key_metric",
                    "val_handlers": "@validate#handlers",
                },
            },
            "initialize": [
                "$monai.utils.set_determinism(seed=@seed)",
                "$os.makedirs(@ckpt_dir, exist_ok=True)",
                "$os.makedirs(@output_dir, exist_ok=True)",
                "$@budget.start_clock()",
            ],
            "run": [
                "$@train#checkpoint.attach(@train#trainer)",
                "$@budget.attach(@train#trainer)",
                "$@train#trainer.run()",
            ],
            "finalize": [
                "$record_training(@bundle_root, @validate#history, @output_dir)",
            ],
        }
    )
    return config


def evaluate_config(plan: Plan) -> dict[str, Any]:
    """``configs/evaluate.json``: overrides train.json to score the best model on the input's own grid."""
    distance_unit = "mm" if plan.spatial_dims == 3 else "pixels"
    return {
        "keep_largest_labels": "$read_plans(@bundle_root)['postprocessing']['keep_largest_labels']",
        "validate#preprocessing": {
            "_target_": "Compose",
            "transforms": "$@preprocessing_steps[:1] + [@validate#keep_original_label] + @preprocessing_steps[1:]",
        },
        "validate#keep_original_label": {
            "_target_": "CopyItemsd",
            "keys": "label",
            "names": "original_label",
            "_desc_": "the label on the scan's own grid: metrics are computed there, after the prediction is inverted",
        },
        "validate#inferer#overlap": plan.inference["overlap"],
        "validate#postprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "Activationsd", "keys": "pred", "softmax": True},
                {
                    "_target_": "Invertd",
                    "keys": "pred",
                    "transform": "@validate#preprocessing",
                    "orig_keys": "image",
                    "nearest_interp": False,
                    "to_tensor": True,
                },
                {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
                {
                    "_target_": "KeepLargestConnectedComponentd",
                    "keys": "pred",
                    "applied_labels": "@keep_largest_labels",
                    "_disabled_": "$not @keep_largest_labels",
                    "_desc_": "the post-processing training chose (plans.json)",
                },
                {
                    "_target_": "CopyItemsd",
                    "keys": "original_label",
                    "names": "ground_truth",
                },
                {"_target_": "EnsureChannelFirstd", "keys": "ground_truth", "channel_dim": "no_channel"},
                *(
                    [
                        {
                            "_target_": "MapLabelValued",
                            "keys": "ground_truth",
                            "orig_labels": plan.label_values,
                            "target_labels": list(range(plan.num_classes)),
                        }
                    ]
                    if plan.label_values != list(range(plan.num_classes))
                    else []
                ),
                {
                    "_target_": "AsDiscreted",
                    "keys": ["pred", "ground_truth"],
                    "to_onehot": "@num_classes",
                },
            ],
        },
        "validate#key_metric": {
            "val_mean_dice": {
                "_target_": "MeanDice",
                "include_background": False,
                "output_transform": "$monai.handlers.from_engine(['pred', 'ground_truth'])",
            }
        },
        "validate#evaluator#additional_metrics": {
            "val_hd95": {
                "_target_": "HausdorffDistance",
                "include_background": False,
                "percentile": 95,
                "output_transform": "$monai.handlers.from_engine(['pred', 'ground_truth'])",
            },
        },
        "validate#handlers": [
            {
                "_target_": "CheckpointLoader",
                "load_path": "$os.path.join(@ckpt_dir, 'model.pt')",
                "load_dict": {"model": "@network"},
                "map_location": "@device",
            },
            {"_target_": "StatsHandler", "iteration_log": False},
            {
                "_target_": "MetricsSaver",
                "save_dir": "@output_dir",
                "metrics": "*",
                "metric_details": "*",
                "batch_transform": "$lambda batch: [item['image'].meta for item in batch]",
                "summary_ops": "*",
            },
            {
                "_target_": "monai_unet.handlers.MetricsSummary",
                "path": "$os.path.join(@output_dir, 'metrics_summary.json')",
                "extra": {
                    "checkpoint": "$os.path.join(@ckpt_dir, 'model.pt')",
                    "distances": f"HD95 in voxels of each case's own grid (pictures: {distance_unit})",
                },
            },
        ],
        "output_dir": "$os.path.join(@bundle_root, 'eval')",
        "initialize": ["$monai.utils.set_determinism(seed=@seed)", "$os.makedirs(@output_dir, exist_ok=True)"],
        "run": ["$@validate#evaluator.run()"],
        "finalize": [],
    }


def _default_inference_input(dataset: PlanDataset) -> str:
    """What ``infer`` reads by default: the dataset's test list, else its imagesTs folder, else the dataset.json."""
    data_json = dataset.root / "dataset.json"
    if data_json.is_file():
        try:
            if json.loads(data_json.read_text(encoding="utf-8")).get("test"):
                return str(data_json)
        except (OSError, json.JSONDecodeError):
            pass
    if (dataset.root / "imagesTs").is_dir():
        return str(dataset.root / "imagesTs")
    return str(dataset.source)


def inference_config(plan: Plan, dataset: PlanDataset) -> dict[str, Any]:
    """``configs/inference.json``: the ids ``monai-unet segment`` overrides, then the pipeline."""
    config = _common(plan, dataset)
    config["imports"] = [*config["imports"], "$from monai_unet.io.datalist import list_inputs"]
    planar = plan.spatial_dims == 2
    config.update(
        {
            "dataset_dir": _default_inference_input(dataset),
            "datalist": f"$list_inputs(@dataset_dir, channels={len(dataset.training[0].images)})",
            "ckpt_path": "$os.path.join(@bundle_root, 'models', 'model.pt')",
            "output_dir": "$os.path.join(@bundle_root, 'predictions')",
            "output_ext": ".png" if planar else ".nii.gz",
            "output_postfix": "seg",
            "tta_axes": plan.inference["tta_axes"],
            "precise": False,
            "save_probabilities": False,
            "save_overlays": False,
            "progress": False,
            "keep_largest_labels": "$read_plans(@bundle_root)['postprocessing']['keep_largest_labels']",
            "label_names": "$({k: v for k, v in @_meta_#network_data_format#outputs#pred#channel_def.items() "
            "if k != '0'})",
            "label_colors": "$@_meta_#network_data_format#outputs#pred#label_colors",
        }
    )
    # the network and preprocessing above come from _common; the inference steps follow
    config["preprocessing"] = {
        "_target_": "Compose",
        "transforms": "$@preprocessing_steps[:2] + [@copy_source] + @preprocessing_steps[2:] if @save_overlays "
        "else @preprocessing_steps",
    }
    config["copy_source"] = {
        "_target_": "CopyItemsd",
        "keys": "image",
        "names": "source_image",
        "_desc_": "the input on its own grid, for the overlays",
    }
    config["dataset"] = {"_target_": "Dataset", "data": "@datalist", "transform": "@preprocessing"}
    config["dataloader"] = {
        "_target_": "DataLoader",
        "dataset": "@dataset",
        "batch_size": 1,
        "shuffle": False,
        "num_workers": 0,
    }
    config["inferer"] = {
        "_target_": "monai_unet.inferers.OverlapTileInferer",
        "roi_size": "@roi_size",
        "sw_batch_size": plan.inference["sw_batch_size"],
        "overlap": plan.inference["overlap"],
        "mode": "gaussian",
        "output": "probabilities",
        "mirror_axes": "@tta_axes",
        "fast": "$not @precise",
        "strict_fp32": "@precise",
        "progress": "@progress",
    }
    save_labels: list[dict[str, Any]] = [
        {
            "_target_": "monai_unet.io.planar.SavePlanard",
            "keys": "pred",
            "output_dir": "@output_dir",
            "output_postfix": "@output_postfix",
            "output_ext": ".png",
            "name_key": "case",
            "_disabled_": "$@output_ext != '.png'",
            "_desc_": "class indices as an 8-bit PNG of the input's size",
        },
        {
            "_target_": "monai_unet.io.SaveSegmentationd",
            "keys": "pred",
            "output_dir": "@output_dir",
            "output_postfix": "@output_postfix",
            "output_ext": "@output_ext",
            "label_names": "@label_names",
            "colors": "@label_colors",
            "name_key": "case",
            "_disabled_": "$@output_ext == '.png'",
        },
    ]
    save_probabilities = {
        "_target_": "monai_unet.io.planar.SavePlanard",
        "keys": "probabilities",
        "output_dir": "@output_dir",
        "output_postfix": "prob",
        "output_ext": ".tif",
        "name_key": "case",
        "_disabled_": "$not @save_probabilities",
    }
    if not planar:
        save_probabilities = {
            "_target_": "SaveImaged",
            "keys": "probabilities",
            "output_dir": "@output_dir",
            "output_postfix": "prob",
            "output_ext": ".nii.gz",
            "resample": False,
            "separate_folder": False,
            "print_log": False,
            "output_dtype": "$torch.float32",
            "output_name_formatter": "$lambda meta, saver: {'subject': meta['case_name'], 'idx': None}",
            "_disabled_": "$not @save_probabilities",
        }
    config["postprocessing"] = {
        "_target_": "Compose",
        "transforms": [
            {
                "_target_": "Invertd",
                "keys": "pred",
                "transform": "@preprocessing",
                "orig_keys": "image",
                "nearest_interp": False,
                "to_tensor": True,
                "_desc_": "undo crop, resampling and reorientation: the prediction lands on the input's own grid",
            },
            {"_target_": "CopyItemsd", "keys": "pred", "names": "probabilities"},
            {
                "_target_": "Lambdad",
                "keys": "probabilities",
                "func": "$lambda x: x[1:]",
                "_desc_": "foreground classes only (the background is 1 minus their sum)",
            },
            {
                "_target_": "Lambda",
                "func": "$lambda d: (d['probabilities'].meta.update(case_name=d['case']), d)[1]",
                "_disabled_": "$not @save_probabilities",
            },
            {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
            {
                "_target_": "KeepLargestConnectedComponentd",
                "keys": "pred",
                "applied_labels": "@keep_largest_labels",
                "_disabled_": "$not @keep_largest_labels",
                "_desc_": "the post-processing training chose, per class (plans.json)",
            },
            save_probabilities,
            *save_labels,
            {
                "_target_": "monai_unet.io.overlay.SaveOverlayd",
                "keys": "source_image",
                "label_key": "pred",
                "output_dir": "@output_dir",
                "colors": "@label_colors",
                "name_key": "case",
                "_disabled_": "$not @save_overlays",
            },
        ],
    }
    config["handlers"] = [
        {
            "_target_": "CheckpointLoader",
            "load_path": "@ckpt_path",
            "load_dict": {"model": "@network"},
            "map_location": "@device",
        },
        {"_target_": "StatsHandler", "iteration_log": False},
    ]
    config["evaluator"] = {
        "_target_": "SupervisedEvaluator",
        "device": "@device",
        "val_data_loader": "@dataloader",
        "network": "@network",
        "inferer": "@inferer",
        "postprocessing": "@postprocessing",
        "val_handlers": "@handlers",
        "amp": False,
    }
    config["initialize"] = ["$monai.utils.set_determinism(seed=0)", "$os.makedirs(@output_dir, exist_ok=True)"]
    config["run"] = ["$@evaluator.run()"]
    return config


def multi_gpu_config() -> dict[str, Any]:
    """``configs/multi_gpu_train.json``: overrides train.json for ``torchrun`` (NCCL on GPUs, gloo on CPUs)."""
    return {
        "device": "$torch.device('cuda:' + os.environ['LOCAL_RANK'] if torch.cuda.is_available() else 'cpu')",
        "network": {
            "_target_": "torch.nn.parallel.DistributedDataParallel",
            "module": "$@network_def.to(@device)",
            "device_ids": "$[@device] if torch.cuda.is_available() else None",
        },
        "train#sampler": {
            "_target_": "DistributedSampler",
            "dataset": "@train#dataset",
            "even_divisible": True,
            "shuffle": True,
        },
        "train#trainer#epoch_length": "@epoch_length",
        "train#trainer#train_handlers": "$@train#handlers if dist.get_rank() == 0 else @train#handlers[:1]",
        "train#checkpoint#is_saver": "$dist.get_rank() == 0",
        "initialize": [
            "$import torch.distributed as dist",
            "$dist.is_initialized() or "
            "dist.init_process_group(backend='nccl' if torch.cuda.is_available() else 'gloo')",
            "$torch.cuda.set_device(@device) if torch.cuda.is_available() else None",
            "$monai.utils.set_determinism(seed=@seed)",
            "$os.makedirs(@ckpt_dir, exist_ok=True)",
            "$os.makedirs(@output_dir, exist_ok=True)",
            "$@budget.start_clock()",
        ],
        "finalize": [
            "$record_training(@bundle_root, @validate#history, @output_dir) if dist.get_rank() == 0 else None",
            "$dist.is_initialized() and dist.destroy_process_group()",
        ],
    }
