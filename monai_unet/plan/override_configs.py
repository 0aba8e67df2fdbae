"""The configs that override another: ``evaluate.json`` (over train.json: the best model scored on each case's own
grid, with the post-processing and mirroring training chose), ``multi_gpu_train.json`` and
``multi_gpu_inference.json`` (over train.json and inference.json, for ``torchrun``)."""

from __future__ import annotations

from typing import Any

from monai_unet.plan.configs import region_metrics
from monai_unet.plan.pipeline import label_steps, one_hot_steps
from monai_unet.plan.recipe import Plan

__all__ = ["evaluate_config", "multi_gpu_config", "multi_gpu_inference_config"]

# torchrun: one process per GPU (NCCL), or per CPU process group member (gloo); each on its LOCAL_RANK's device
_RANK_DEVICE = "$torch.device('cuda:' + os.environ['LOCAL_RANK'] if torch.cuda.is_available() else 'cpu')"
_JOIN_PROCESS_GROUP = [
    "$import torch.distributed as dist",
    "$dist.is_initialized() or dist.init_process_group(backend='nccl' if torch.cuda.is_available() else 'gloo')",
    "$torch.cuda.set_device(@device) if torch.cuda.is_available() else None",
]
_LEAVE_PROCESS_GROUP = "$dist.is_initialized() and dist.destroy_process_group()"


def evaluate_config(plan: Plan, regions: dict[str, tuple[int, ...]] | None = None) -> dict[str, Any]:
    """``configs/evaluate.json``: overrides train.json to score the best model on the input's own grid; a dataset with
    ``regions`` (nnU-Net v2's overlapping labels) also gets each region's Dice and their mean."""
    distances = (
        "HD95 in pixels of each picture" if plan.spatial_dims == 2 else "HD95 in voxels of each scan's own grid, not mm"
    )
    return {
        "keep_largest_labels": "$read_plans(@bundle_root)['postprocessing']['keep_largest_labels']",
        "validate#inferer#mirror_axes": "$read_plans(@bundle_root)['postprocessing'].get('tta_axes', [])",
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
        "validate#dataset#data": "$split_datalist(@split_file, 'validation', @dataset_dir, test_list=True)",
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
                *label_steps(plan, "ground_truth"),
                *one_hot_steps(plan, "pred", "ground_truth", argmax=False),
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
            **region_metrics(regions or {}, "ground_truth"),
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
                    "distances": distances,
                },
            },
        ],
        "output_dir": "$os.path.join(@bundle_root, 'eval')",
        "initialize": ["$monai.utils.set_determinism(seed=@seed)", "$os.makedirs(@output_dir, exist_ok=True)"],
        "run": ["$@validate#evaluator.run()"],
        "finalize": [],
    }


def multi_gpu_config() -> dict[str, Any]:
    """``configs/multi_gpu_train.json``: overrides train.json for ``torchrun`` (NCCL on GPUs, gloo on CPUs)."""
    return {
        "device": _RANK_DEVICE,
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
        "validate#history#is_saver": "$dist.get_rank() == 0",
        "budget#reserve_validations": 1,
        "initialize": [
            *_JOIN_PROCESS_GROUP,
            "$monai.utils.set_determinism(seed=@seed)",
            "$os.makedirs(@ckpt_dir, exist_ok=True)",
            "$os.makedirs(@output_dir, exist_ok=True)",
            "$@budget.start_clock()",
        ],
        "finalize": [
            # no mirroring check (rank 0 alone would run the wrapped network): mirroring stays off
            "$record_training(@bundle_root, @validate#history, @output_dir) if dist.get_rank() == 0 else None",
            _LEAVE_PROCESS_GROUP,
        ],
    }


def multi_gpu_inference_config() -> dict[str, Any]:
    """``configs/multi_gpu_inference.json``: overrides inference.json for ``torchrun``: each process loads the
    network once and segments its share of the cases (``partition_dataset``, not padded: every case is written by
    exactly one process), on its own GPU with NCCL or on the CPU with gloo."""
    return {
        "device": _RANK_DEVICE,
        "dataset#data": "$monai.data.partition_dataset(data=@datalist, num_partitions=dist.get_world_size(), "
        "shuffle=False, even_divisible=False)[dist.get_rank()]",
        "initialize": [
            *_JOIN_PROCESS_GROUP,
            "$monai.utils.set_determinism(seed=0)",
            "$os.makedirs(@output_dir, exist_ok=True)",
        ],
        "finalize": [_LEAVE_PROCESS_GROUP],
    }
