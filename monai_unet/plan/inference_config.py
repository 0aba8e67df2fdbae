"""``configs/inference.json`` of a planned bundle: the ids ``monai-unet segment`` overrides, then the pipeline that
returns each prediction to its input's own grid and writes it (PNG class indices for 2D inputs, NIfTI for 3D)."""

from __future__ import annotations

import json
from typing import Any

from monai_unet.plan.configs import common_config
from monai_unet.plan.dataset import PlanDataset
from monai_unet.plan.pipeline import tile_inferer
from monai_unet.plan.recipe import Plan

__all__ = ["inference_config"]


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
    config = common_config(plan, dataset)
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
            "tta_axes": "$read_plans(@bundle_root)['postprocessing'].get('tta_axes', [])",
            "precise": False,
            "save_probabilities": False,
            "save_overlays": False,
            "progress": False,
            "keep_largest_labels": "$read_plans(@bundle_root)['postprocessing']['keep_largest_labels']",
            "label_names": "$({k: v for k, v in @_meta_#network_data_format#outputs#pred#channel_def.items() "
            "if k != '0'})",
            "label_colors": "$@_meta_#network_data_format#outputs#pred#label_colors",
            "label_terminology": "$@_meta_#network_data_format#outputs#pred.get('terminology', {})",
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
    config["inferer"] = tile_inferer(
        plan,
        plan.inference["overlap"],
        "probabilities",
        mirror_axes="@tta_axes",
        fast="$not @precise",
        strict_fp32="@precise",
        progress="@progress",
    )
    save_labels = {
        "_target_": "monai_unet.io.SavePredictiond",
        "keys": "pred",
        "output_dir": "@output_dir",
        "output_postfix": "@output_postfix",
        "output_ext": "@output_ext",
        "label_names": "@label_names",
        "colors": "@label_colors",
        "terminology": "@label_terminology",
        "name_key": "case",
    }
    save_probabilities = {
        "_target_": "monai_unet.io.SavePredictiond",
        "keys": "probabilities",
        "output_dir": "@output_dir",
        "output_postfix": "prob",
        "output_ext": ".tif" if planar else ".nii.gz",
        "probabilities": True,
        "name_key": "case",
        "_disabled_": "$not @save_probabilities",
        "_desc_": "float32, one map per foreground class",
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
            {
                "_target_": "CopyItemsd",
                "keys": "pred",
                "names": "probabilities",
                "_disabled_": "$not @save_probabilities",
            },
            {
                "_target_": "Lambdad",
                "keys": "probabilities",
                "func": "$lambda x: x[1:]",
                "_disabled_": "$not @save_probabilities",
                "_desc_": "foreground classes only (the background is 1 minus their sum)",
            },
            {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
            {
                "_target_": "KeepLargestConnectedComponentd",
                "keys": "pred",
                "applied_labels": "@keep_largest_labels",
                "_disabled_": "$not @keep_largest_labels",
                "_desc_": "the post-processing training chose, per class (plans.json)",
            },
        ],
        "_desc_": "the prediction on the input's own grid, as class indices; writes nothing (MONAI Deploy runs it)",
    }
    config["saving"] = {
        "_target_": "Compose",
        "transforms": [
            save_probabilities,
            save_labels,
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
        "_desc_": "the files this bundle writes, kept out of postprocessing so that a deployed app writes none",
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
        "postprocessing": "$monai.transforms.Compose([@postprocessing, @saving])",
        "val_handlers": "@handlers",
        "amp": False,
    }
    config["initialize"] = ["$monai.utils.set_determinism(seed=0)", "$os.makedirs(@output_dir, exist_ok=True)"]
    config["run"] = ["$@evaluator.run()"]
    return config
