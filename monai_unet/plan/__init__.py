"""``monai-unet plan``: a labelled dataset in, a complete MONAI bundle out, the recipe derived from the data.

Stages, one module each, data flowing one way: :mod:`~monai_unet.plan.dataset` (read and check the dataset),
:mod:`~monai_unet.plan.fingerprint` (measure every case), :mod:`~monai_unet.plan.recipe` (choose, with reasons,
using :mod:`~monai_unet.plan.calibrate` to time the training step), :mod:`~monai_unet.plan.bundle` (write the
configs), and :mod:`~monai_unet.plan.record` (what training adds to the plans when it ends).
"""

from __future__ import annotations

from monai_unet.plan.dataset import DatasetError, PlanDataset, read_dataset
from monai_unet.plan.fingerprint import Fingerprint, measure
from monai_unet.plan.recipe import Plan, make_plan
from monai_unet.plan.record import read_plans, record_training

__all__ = [
    "DatasetError",
    "Fingerprint",
    "Plan",
    "PlanDataset",
    "make_plan",
    "measure",
    "read_dataset",
    "read_plans",
    "record_training",
]
