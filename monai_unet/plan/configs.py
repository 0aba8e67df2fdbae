"""The bundle's train config as a Python dict, and the parts every config starts with.

The overrides of train.json (evaluate, multi-GPU) are in :mod:`~monai_unet.plan.override_configs`, the inference
config in :mod:`~monai_unet.plan.inference_config`. The train, evaluate and inference configs share one definition
of the network and of the preprocessing (:mod:`~monai_unet.plan.pipeline`), written into every config that needs
them; a test checks that the written copies are equal, so train and inference cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Any

from monai_unet.plan.dataset import PlanDataset
from monai_unet.plan.inference_choice import validations_after_training
from monai_unet.plan.loss import loss_config
from monai_unet.plan.pipeline import (
    augmentation_steps,
    network_def,
    one_hot_steps,
    preprocessing_steps,
    tile_inferer,
)
from monai_unet.plan.recipe import Plan

__all__ = ["common_config", "network_def", "preprocessing_steps", "region_metrics", "topology_guards", "train_config"]

_IMPORTS = [
    "$import os",
    "$import torch",
    "$import monai",
    "$from monai_unet.plan import read_plans",
    "$from monai_unet.plan import record_training",
]


def topology_guards(plan: Plan) -> dict[str, int]:
    """Validation metrics that guard the topology of a 2D plan's thin classes (``plan.loss['skeleton_classes']``):
    ``{"val_rand_error_<c>": c}``, the foreground-restricted Rand error of the regions class ``c`` separates.

    Averaging predictions (test-time mirroring) leaves one-voxel gaps in such a class at the 0.5 threshold that Dice
    and skeleton recall barely see but that merge the regions it separates (ISBI, three seeds: Rand error at 0.5
    +0.028 to +0.040 with mirroring while Dice gained; ``benchmarks/RESULTS.md``), so the mirroring check must not
    raise them. 3D plans have none (the measure is 2D)."""
    if plan.spatial_dims != 2:
        return {}
    return {f"val_rand_error_{c}": int(c) for c in plan.loss.get("skeleton_classes", [])}


def _rand_error(channel: int, desc: str) -> dict[str, Any]:
    return {
        "_target_": "IgniteMetricHandler",
        "metric_fn": {
            "_target_": "monai_unet.metrics.ISBIErrorMetric",
            "error": "rand",
            "threshold": 0.5,
            "membrane_channel": channel,
        },
        "output_transform": "$monai.handlers.from_engine(['pred', 'label'])",
        "_desc_": desc,
    }


def region_metrics(regions: dict[str, tuple[int, ...]], label_key: str) -> dict[str, Any]:
    """With nnU-Net v2's regions (:mod:`~monai_unet.plan.regions`): their mean Dice, ``val_mean_region_dice`` (what
    selects the model, as nnU-Net selects on its regions), and each region's, ``val_region_dice_<name>``; a region is
    the union of its classes in the one-hot prediction and ``label_key``."""

    def dice(selected: list[list[int]], desc: str) -> dict[str, Any]:
        pair = f"monai.handlers.from_engine(['pred', '{label_key}'])(x)"
        return {
            "_target_": "MeanDice",
            "include_background": False,
            "output_transform": f"$lambda x: region_maps({pair}, {selected})",
            "_desc_": desc,
        }

    if not regions:
        return {}
    metrics = {"val_mean_region_dice": dice([list(c) for c in regions.values()], "mean Dice of the regions")}
    for index, (name, classes) in enumerate(regions.items(), start=1):
        key = "val_region_dice_" + (re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or str(index))
        key = key if key not in metrics else f"{key}_{index}"  # names that differ only in case or punctuation
        metrics[key] = dice([list(classes)], f"Dice of the region {name!r}: the union of classes {list(classes)}")
    return metrics


def _additional_metrics(plan: Plan, regions: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """Validation metrics beside the Dice: the ISBI Rand error (one-hot prediction, foreground channel 1) when it
    picks the best model, the :func:`topology_guards` of thin 2D classes and the :func:`region_metrics`."""
    metrics = region_metrics(regions, "label")
    if plan.selection == "rand_error":
        metrics["val_rand_error"] = _rand_error(1, "the task's own metric picks the best model (plans.json: selection)")
    for name, channel in topology_guards(plan).items():
        metrics[name] = _rand_error(channel, "a thin class's topology: test-time mirroring must not raise it")
    return metrics


def _mean_dice() -> dict[str, Any]:
    """The validation's key metric: mean foreground Dice of the one-hot prediction and label."""
    return {
        "val_mean_dice": {
            "_target_": "MeanDice",
            "include_background": False,
            "output_transform": "$monai.handlers.from_engine(['pred', 'label'])",
        }
    }


def common_config(plan: Plan, dataset: PlanDataset) -> dict[str, Any]:
    """The ids every config starts with (top of the file)."""
    config: dict[str, Any] = {
        "imports": list(_IMPORTS),
        "bundle_root": ".",
        "dataset_dir": str(dataset.root),
        "device": f"$torch.device('{plan.device}' if '{plan.device}' == 'cpu' or torch.cuda.is_available() else 'cpu')",
        "num_classes": plan.num_classes,
        "patch_size": plan.patch_size,
        "roi_size": "@patch_size",
        "dicom_resample": False,
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
    mirror_axes = plan.inference["mirror_check_axes"]
    key_metric = "val_rand_error" if plan.selection == "rand_error" else "val_mean_dice"
    if dataset.regions and plan.selection == "dice":
        key_metric = "val_mean_region_dice"  # the regions, not the classes they are made of (nnU-Net's choice)
    averaging = plan.optimiser["average_half_life"]  # None: validations score the weights as trained
    validation_side = "validation_in_training" if "validation_in_training" in plan.split else "validation"
    config = common_config(plan, dataset)
    config["imports"] = [
        *config["imports"],
        "$from ignite.engine import Events",
        "$from monai_unet.handlers import new_run_dir",
        "$from monai_unet.io.datalist import split_datalist",
        *(["$from monai_unet.metrics import region_maps"] if dataset.regions else []),  # the regions' Dice
    ]
    config.update(
        {
            "split_file": "$os.path.join(@bundle_root, 'configs', 'split.json')",
            "ckpt_dir": "$os.path.join(@bundle_root, 'models')",
            "output_dir": "$new_run_dir(os.path.join(@bundle_root, 'runs'), 'train')",
            "promote": "if-missing",
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
            "cache_rate": plan.budget["cache_rate"],
            "num_workers": 0 if plan.device == "cpu" else 4,
            "precision": plan.precision,
            "loss": loss_config(plan.loss),
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
                "reserve_validations": validations_after_training(mirror_axes),
                "summary_path": "$os.path.join(@output_dir, 'training_summary.json')",
                "_desc_": "the learning rate decays with elapsed time and reaches 0 when the budget ends",
            },
            **(
                {
                    "averaging": {
                        "_target_": "monai_unet.handlers.WeightAverage",
                        "network": "@network",
                        "validator": "@validate#evaluator",
                        "half_life": averaging,
                        "_desc_": "validations score a moving average of the weights (half-life in steps)",
                    }
                }
                if averaging
                else {}
            ),
            "train": {
                "preprocessing": {
                    "_target_": "Compose",
                    "transforms": "$@preprocessing_steps + @train#augmentation",
                },
                "augmentation": augmentation_steps(plan),
                "dataset": {
                    "_target_": "CacheDataset",
                    "data": "$split_datalist(@split_file, 'training', @dataset_dir)",
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
                "inferer": {
                    "_target_": "monai_unet.inferers.MixedPrecisionInferer",
                    "precision": "@precision",
                    "_desc_": "auto: the forward pass in bfloat16 where the hardware runs it natively; fp32: never",
                },
                "checkpoint": {
                    "_target_": "monai_unet.handlers.TrainingCheckpoint",
                    "save_dir": "@output_dir",
                    "save_dict": {
                        "network": "@network",
                        "optimizer": "@optimizer",
                        "trainer": "@train#trainer",
                        "history": "@validate#history",
                        "budget": "@budget",
                        **({"averaging": "@averaging"} if averaging else {}),
                        "random": {
                            "_target_": "monai_unet.handlers.RandomStates",
                            "transforms": "$@train#dataset.transform",
                        },
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
                    "data": f"$split_datalist(@split_file, '{validation_side}', @dataset_dir)",
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
                "inferer": tile_inferer(
                    plan,
                    plan.inference["validation_overlap"],
                    "logits",
                    _desc_="a smaller overlap than at inference keeps validation cheap inside the budget",
                ),
                "postprocessing": {
                    "_target_": "Compose",
                    "transforms": [
                        {"_target_": "Activationsd", "keys": "pred", "softmax": True},
                        *one_hot_steps(plan, "pred", "label"),
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
                    "key_metric": key_metric,
                    "higher_is_better": plan.selection != "rand_error",
                    "best_path": "$os.path.join(@output_dir, 'model.pt')",
                    "csv_path": "$os.path.join(@output_dir, 'validation_history.csv')",
                    "promote_path": "$os.path.join(@ckpt_dir, 'model.pt')",
                    "promote": "@promote",
                    "_desc_": "the run's best model; copied to models/model.pt when that has none or promote is true",
                },
                "handlers": [
                    "@validate#components",
                    "@validate#history",
                    {"_target_": "StatsHandler", "iteration_log": False},
                ],
                "key_metric": _mean_dice(),
                "additional_metrics": _additional_metrics(plan, dataset.regions),
                "evaluator": {
                    "_target_": "SupervisedEvaluator",
                    "device": "@device",
                    "val_data_loader": "@validate#dataloader",
                    "network": "@network",
                    "inferer": "@validate#inferer",
                    "postprocessing": "@validate#postprocessing",
                    "key_val_metric": "@validate#key_metric",
                    "additional_metrics": "@validate#additional_metrics",
                    "val_handlers": "@validate#handlers",
                },
                "mirrored": {
                    "inferer": tile_inferer(
                        plan, plan.inference["validation_overlap"], "logits", mirror_axes=mirror_axes
                    ),
                    "evaluator": {
                        "_target_": "SupervisedEvaluator",
                        "device": "@device",
                        "val_data_loader": "@validate#dataloader",
                        "network": "@network",
                        "inferer": "@validate#mirrored#inferer",
                        "postprocessing": "@validate#postprocessing",
                        "key_val_metric": _mean_dice(),
                        "additional_metrics": _additional_metrics(plan, dataset.regions),
                        "_desc_": "the validation again, tiles averaged over the flips of mirror_axes; saves nothing",
                    },
                },
                "mirroring": {
                    "_target_": "monai_unet.handlers.MirroringCheck",
                    "evaluator": "@validate#mirrored#evaluator",
                    "network": "@network",
                    "best_path": "$os.path.join(@output_dir, 'model.pt')",
                    "axes": mirror_axes,
                    "key_metric": key_metric,
                    "guard_metrics": sorted(topology_guards(plan)),
                    "_desc_": "after training: does test-time mirroring help the best model? (plans.json: tta_axes)",
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
                *(["$@averaging.attach(@train#trainer)"] if averaging else []),
                "$@train#trainer.run()",
            ],
            "finalize": [
                "$record_training(@bundle_root, @validate#history, @output_dir, @validate#mirroring)",
            ],
        }
    )
    return config
