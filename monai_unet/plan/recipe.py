"""The recipe: every training and inference choice derived from the fingerprint, each with its reason.

The rules follow nnU-Net's (Isensee et al. 2021, "nnU-Net: a self-configuring method for deep learning-based
biomedical image segmentation"), adapted to a wall-clock budget on the machine that will train:

- **Spacing** (3D): the median spacing; for strongly anisotropic data (coarsest axis more than 3× the finest, and
  few voxels along it) the coarse axis takes the 10th percentile of its spacings instead, so thin-slice cases are
  not thrown away. 2D pictures keep their pixels, scaled down when the median image exceeds 1024 pixels.
- **Coarsening** (ours, for a CPU budget): when every foreground class is thick (the thinnest, 10th percentile over
  the cases, more than 10 voxels across), the fine axes are coarsened until it is 8 voxels across, at most 2×, as
  nnU-Net's low-resolution stage does for large objects: a 2× coarser 3D grid makes a step 4-8× cheaper and lets a
  patch see more context; thin structures (membranes, myocardium, tumour sub-regions) keep their grid.
- **Normalisation**: CT (a modality named CT): clip to the 0.5/99.5 percentiles of the foreground over the dataset,
  then z-score with the foreground mean and standard deviation. 3-channel 8-bit pictures (RGB): each channel
  0-255 → 0-1. Everything else (MR, microscopy, grey pictures): per-case z-score per channel, inside the nonzero
  region when cropping to it shrinks the median case by at least a quarter (skull-stripped MR).
- **Network**: same-padding U-Net with instance norm; every axis is pooled (×2) until its feature map would drop
  below 4 voxels, at most 5 times; an axis whose spacing is more than twice the finest current spacing is not
  pooled and gets 1-voxel kernels until the others catch up (anisotropic data). Widths double per level from the
  base width, capped at 256.
- **Patch, batch, width**: start from the median case (at the target spacing) as the patch, capped at 128³
  voxels (3D) or 512² pixels (2D); batch 2 (3D) or 8 (2D, slices stored as 3D); base width 32. The training step
  of that configuration is timed on this machine (:mod:`~monai_unet.plan.calibrate`), at the precision training
  will use (bfloat16 autocast where the hardware runs it natively, ``precision`` ``auto``, channels-last on the CPU;
  2-3.8x faster steps on AVX512-BF16 CPUs, :class:`~monai_unet.inferers.MixedPrecisionInferer`) with the planned
  loss; training gets the budget less the validations and the final reserve of
  :class:`~monai_unet.handlers.TimeBudget` (the last validation and the mirroring check); when the budget would
  then hold fewer than ``60 × minutes`` iterations, and never fewer than 800, the plan steps down a ladder (base
  width 32 → 16, then the patch by 15 % per step; the batch stays) until it does, or reaches the smallest
  configuration (ACDC, 10 min: 387 steps, Dice 0.62; 1,309, 0.75).
- **Loss and sampling**: Dice + cross-entropy (MONAI's ``DiceCELoss``, batch Dice, background left out of the
  Dice term; nnU-Net's deep supervision only on request: it did not win here); in 2D, for classes thinner than 8
  voxels on the planned grid (membranes, walls) the recall of their skeleton is added
  (:class:`~monai_unet.losses.DiceCESkeletonRecallLoss`, weight 1), so that their predictions do not break (ISBI: Rand
  error won, two seeds; in 3D it lost on ACDC and is not used; :mod:`~monai_unet.plan.loss`); one patch in three is
  centred on a foreground voxel (classes equally often), the others anywhere, as nnU-Net does. Voxels under an
  ``ignore`` label (sparse annotation) count in neither the loss nor the validation metrics.
- **Augmentation**: ``RandElasticGridd`` (3×3(×3) grid, σ 3 % of the patch per axis) with rotation (±15°; in-plane
  for anisotropic data), zoom 0.85-1.2, flips of every axis, in one resampling; intensity scale, shift, gamma, noise.
- **Optimiser and schedule**: Adam, 1e-3, weight decay 1e-5, poly decay (0.9) by elapsed time to zero at the budget.
- **Validation**: the dataset's own ``validation`` list, or fold K of 5 (of fewer when there are fewer than 5
  groups) over the training cases grouped by patient, folds as contiguous blocks of the sorted case names (or
  ``--fold all``: every case on both sides); neighbouring names are usually one patient, series or video.
  Validations fill about 10 % of the budget; the best network by mean foreground (or region) Dice is kept. Cached
  preprocessed cases take at most half the memory (:mod:`~monai_unet.plan.cache`).
- **Inference**: the patch as tile, overlap 0.5, Gaussian blending. Test-time mirroring (2^axes the cost) is on
  when the best model, validated again mirrored, gained and, for thin 2D classes, kept their Rand error (ISBI: it rose
  on five runs of six; :class:`monai_unet.handlers.MirroringCheck`). The check must fit in 10 % of the budget;
  anisotropic 3D data falls back to the in-plane axes, and when neither fits it is skipped (mirroring off).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from monai_unet.inferers import uses_bf16
from monai_unet.io.integrity import available_memory
from monai_unet.plan.augmentation import choose_augmentation
from monai_unet.plan.cache import cache_rate, cached_bytes
from monai_unet.plan.calibrate import RUN_OVERHEAD, StepTiming, time_training_step
from monai_unet.plan.dataset import DatasetError, PlanDataset
from monai_unet.plan.fingerprint import Fingerprint
from monai_unet.plan.geometry import (
    ANISOTROPY,
    MAX_PATCH_VOXELS,
    MIN_FEATURE_MAP,
    case_shape_at,
    coarsening,
    fine_axes,
    fit_patch,
    flat_case_axis,
    initial_patch,
    median_shape,
    target_spacing,
)
from monai_unet.plan.inference_choice import (
    VALIDATION_OVERLAP,
    choose_inference,
    tile_count,
)
from monai_unet.plan.label_scan import decoding_reason
from monai_unet.plan.ladder import FEATURE_CAP, Candidate, ladder, network_kwargs
from monai_unet.plan.loss import choose_loss, loss_config
from monai_unet.plan.normalisation import choose_normalisation
from monai_unet.plan.optimiser import choose_optimiser
from monai_unet.plan.sampling import choose_sampling
from monai_unet.plan.split import choose_split
from monai_unet.plan.validation_budget import VALIDATION_SHARE, validation_outcome

__all__ = ["SELECTION_METRICS", "Plan", "make_plan"]

MIN_PATCH = {2: 64, 3: 32}
LARGE_PICTURE = 1024
#: 40 until 0.15.0. Channels-last bf16 steps (0.16.0) made every rung 1.2-1.4x cheaper, and at 40 a minute ACDC's
#: plan grew from 128 x 160 x 10 to 160 x 192 x 10 (1,059 steps) and lost (held-out mean Dice 0.802 against 0.835 for
#: the old patch's 1,497 steps, same seed); at 80 it shrank to 112 x 128 x 10 and lost too (0.819 against 0.829). At 60
#: the patches validated before (ACDC 128 x 160 x 10, ISBI 320^2 of 8) stay and take the speed-up as steps.
ITERATIONS_PER_MINUTE = 60
MIN_ITERATIONS = 800
#: A rung timed this many times slower than predicted from its measured neighbour is timed again (ACDC: 1.08 s, 0.34 s).
SLOW_TIMING = 1.5
#: Validation metrics that can pick the best model (``make_plan(selection=...)``, ``monai-unet plan --select-by``).
SELECTION_METRICS = ("dice", "rand_error")


@dataclass
class Plan:
    """Everything the bundle writer needs; ``reasons`` says why each value is what it is."""

    spatial_dims: int
    in_channels: int
    num_classes: int
    label_values: list[int | list[int]]
    label_names: list[str]
    channel_names: list[str]
    target_spacing: list[float] | None
    normalisation: dict[str, Any]
    network: dict[str, Any]
    patch_size: list[int]
    batch_size: int
    samples_per_case: int
    sampling: dict[str, Any]
    augmentation: dict[str, Any]
    loss: dict[str, Any]
    optimiser: dict[str, Any]
    budget: dict[str, Any]
    split: dict[str, Any]
    inference: dict[str, Any]
    device: str
    seed: int
    selection: str = "dice"
    precision: str = "auto"
    label_decoding: dict[str, bool] = field(default_factory=dict)  # label pictures: see Fingerprint.label_decoding
    ignore_value: int | None = None  # the label value of unannotated voxels (PlanDataset.ignore_value)
    reasons: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def make_plan(
    dataset: PlanDataset,
    fp: Fingerprint,
    budget_minutes: float,
    device: str = "cpu",
    fold: int | str = 0,
    seed: int = 0,
    read_seconds: float = 0.0,
    selection: str = "dice",
    precision: str = "auto",
    average_weights: bool = True,
    deep_supervision: bool = False,
    norm: str = "instance",
    timer=time_training_step,
) -> Plan:
    """Derive the recipe from the fingerprint and a calibration of the training step on ``device``.

    Args:
        dataset: the dataset (labels, modality, cases).
        fp: its fingerprint.
        budget_minutes: wall-clock minutes for the whole training, validation included.
        device: where training runs (``"cpu"`` or ``"cuda"``); the calibration runs there.
        fold: the cross-validation fold held out (0 when the dataset has a validation list), or ``"all"``.
        seed: training seed (the plan itself is deterministic up to the measured step times).
        read_seconds: seconds the fingerprint took to read every case, an estimate of caching at training start.
        selection: the validation metric that picks the best model, one of :data:`SELECTION_METRICS` (``"dice"``:
            mean foreground Dice; ``"rand_error"``: the ISBI 2012 Rand error of the foreground as a boundary map,
            for 2D membrane tasks).
        precision: the training precision (:data:`monai_unet.inferers.PRECISIONS`): ``auto`` trains in bfloat16
            where the hardware runs it natively; the calibration times the step at the precision training uses.
        average_weights: validations (and the best model) use a moving average of the weights
            (:func:`~monai_unet.plan.optimiser.choose_optimiser`).
        deep_supervision: heads and loss at every decoder resolution but the two lowest (nnU-Net's).
        norm: the network's normalisation, ``"instance"`` (nnU-Net's) or ``"batch"`` (the stock MONAI recipes').
        timer: the step timer (a stand-in in tests that must not depend on this machine's speed).
    """
    dims = fp.spatial_dims
    reasons: dict[str, str] = {}
    if selection not in SELECTION_METRICS:
        raise ValueError(f"selection metric {selection!r}: expected one of {', '.join(SELECTION_METRICS)}")
    if selection == "rand_error" and (dims != 2 or fp.num_classes != 2 or dataset.ignore_value is not None):
        raise DatasetError(
            f"{dataset.source}: the Rand error scores a 2D boundary map (one foreground class, every pixel annotated); "
            f"this dataset is {dims}D with {fp.num_classes - 1} foreground class(es)"
            f"{'' if dataset.ignore_value is None else ' and unannotated pixels'}; select by dice"
        )
    split = choose_split(dataset, fold)
    reasons["split"] = (
        f"{split['mode']}: {len(split['training'])} training, {len(split['validation'])} validation cases."
    )
    spacing, reasons["target_spacing"] = target_spacing(fp)
    factor, coarsened = coarsening(fp, spacing)
    reasons["target_spacing"] += " " + coarsened[0].upper() + coarsened[1:]
    scale = 1.0
    if spacing is not None and factor > 1.0:
        fine = fine_axes(spacing)
        spacing = [round(s * factor, 5) if a in fine else s for a, s in enumerate(spacing)]
    if dims == 2:
        median = float(np.max(fp.median("shape")))
        scale = round(min(1.0 / factor, LARGE_PICTURE / median), 4)
        if median > LARGE_PICTURE and scale < 1.0 / factor:
            reasons["target_spacing"] += f" The median picture ({median:.0f} px) is scaled by {scale:.3g}."
    normalisation, reasons["normalisation"] = choose_normalisation(dataset.modality, fp)
    normalisation["scale"] = scale
    cropped = normalisation["nonzero"]  # training and validation run on the cases cropped to their nonzero region
    typical = median_shape(fp, spacing, scale, cropped)
    # A 3D patch reaching past the median case along a few-slice axis would be mostly padding.
    minimum = np.minimum(np.full(dims, MIN_PATCH[dims], dtype=float), np.maximum(typical, 1.0))
    grid_spacing = spacing if spacing is not None else [1.0] * dims
    flat = flat_case_axis(fp)  # slices stored as 3D files: batched like pictures
    batch = 2 if dims == 3 and flat is None else 8
    budget_s = 60.0 * budget_minutes
    bf16 = uses_bf16(precision, device)
    min_iterations = max(MIN_ITERATIONS, int(ITERATIONS_PER_MINUTE * budget_minutes))
    startup_s = 1.5 * read_seconds
    validating = [c for c in fp.cases if c.name in set(split["validation"])]
    val_shapes = [case_shape_at(c, spacing, scale, cropped) for c in validating]
    anisotropic_axis = flat  # rotation about it only; mirroring and tiling in-plane
    if spacing is not None and flat is None and max(spacing) > ANISOTROPY * min(spacing):
        anisotropic_axis = int(np.argmax(spacing))
    ignore_index = None if dataset.ignore_value is None else fp.num_classes  # unannotated voxels, after the classes
    loss, reasons["loss"] = choose_loss(fp, spacing, scale, dataset.label_names, deep_supervision, ignore_index)
    step_loss = loss_config(loss)  # the calibration times the step with the bundle's own loss

    def evaluate(candidate: Candidate, timing: StepTiming) -> dict[str, Any]:
        patch, _pools, _ = fit_patch(candidate.patch, grid_spacing, dims)
        seconds = [tile_count(s, patch, VALIDATION_OVERLAP) * timing.forward_s * 1.2 for s in val_shapes]  # + metrics
        usable = budget_s - startup_s
        return validation_outcome(seconds, usable, budget_s, timing.train_step_s, dims, anisotropic_axis)

    # Time the cheapest configuration, predict the others from it (cost ∝ batch × voxels × width²), then time
    # the first predicted to fit and step down until a measured one does: a few short measurements in all.
    rungs: list[tuple[Candidate, list[int], dict[str, Any]]] = []
    for candidate in ladder(initial_patch(typical, dims), batch, minimum):
        patch, pools, kernels = fit_patch(candidate.patch, grid_spacing, dims)
        previous = rungs[-1] if rungs else None
        if previous and (previous[1], previous[0].base, previous[0].batch) == (patch, candidate.base, candidate.batch):
            continue
        net = network_kwargs(dims, fp.channels, fp.num_classes, candidate.base, pools, kernels, deep_supervision, norm)
        rungs.append((candidate, patch, net))
    timings: dict[int, StepTiming] = {}

    def cost(index: int) -> float:
        candidate, patch, _ = rungs[index]
        return float(candidate.batch * np.prod(patch) * candidate.base**2)

    def timing_of(index: int) -> StepTiming:
        if index in timings:
            return timings[index]
        nearest = min(timings, key=lambda k: abs(math.log(cost(k) / cost(index))))
        ratio = cost(index) / cost(nearest)
        forward_ratio = ratio * rungs[nearest][0].batch / rungs[index][0].batch
        return StepTiming(timings[nearest].train_step_s * ratio, timings[nearest].forward_s * forward_ratio)

    def measure_rung(index: int) -> StepTiming:
        candidate, patch, net = rungs[index]
        predicted = timing_of(index).train_step_s if timings else math.inf
        timings[index] = timer(net, patch, candidate.batch, device, precision, loss=step_loss)
        if timings[index].train_step_s > SLOW_TIMING * predicted:  # a busy machine? the faster of two timings
            again = timer(net, patch, candidate.batch, device, precision, loss=step_loss)
            timings[index] = min(timings[index], again, key=lambda t: t.train_step_s)
        return timings[index]

    def first_fitting(start: int) -> int:
        for index in range(start, len(rungs)):
            if evaluate(rungs[index][0], timing_of(index))["iterations"] >= min_iterations:
                return index
        return len(rungs) - 1

    def fits(index: int) -> bool:
        return evaluate(rungs[index][0], timings[index])["iterations"] >= 0.9 * min_iterations

    # Each measurement updates the predictions: a rung that fits sends the search back up to the largest rung now
    # predicted to fit, one that does not sends it down; the smallest rung may be timed again (a first timing taken
    # while the machine was busy once made every other rung look too slow), and any rung timed SLOW_TIMING times its
    # prediction is timed again at once. The largest measured rung that fits wins.
    last = len(rungs) - 1
    measure_rung(last)
    tried: set[int] = set()
    index = first_fitting(0)
    while index not in tried and len(tried) < 4:
        tried.add(index)
        measure_rung(index)
        index = first_fitting(0) if fits(index) else first_fitting(index + 1)
    index = min((k for k in timings if fits(k)), default=last)
    candidate, patch, net = rungs[index]
    timing = timings[index]
    measured = [(rungs[k][0], timings[k], evaluate(rungs[k][0], timings[k])) for k in sorted(timings)]
    outcome = evaluate(candidate, timing)
    reasons["calibration"] = (
        f"{len(measured)} configuration(s) timed on {device} in {'bfloat16' if bf16 else 'float32'}; the first "
        "whose training step lets the "
        f"{budget_minutes:g}-minute budget hold at least {min_iterations} iterations "
        f"({ITERATIONS_PER_MINUTE} per minute, at least {MIN_ITERATIONS}) "
        f"is kept: {timing.train_step_s:.3f} s per step as a run averages it (the median timed step with the planned "
        f"loss, {timing.augmentation_s:.3f} s of augmentation, times {RUN_OVERHEAD:g} for the loader, handlers and "
        f"jitter), about {outcome['iterations']:.0f} iterations after the validations and the final reserve."
        + (
            ""
            if outcome["iterations"] >= min_iterations
            else " That is within the 10 % the estimate errs by, so it is kept."
            if fits(index)
            else " No configuration reached that; the smallest is used."
        )
    )
    reasons["network"] = (
        f"same-padding U-Net, {norm} norm, {len(net['pools'])} poolings for a {patch} patch "
        f"(per axis until the map is {MIN_FEATURE_MAP} voxels, a coarse axis waiting for the others), widths from "
        f"{candidate.base} doubling to at most {FEATURE_CAP}"
        + (f"; {heads} deep supervision heads." if (heads := net["deep_supervision"]) else ".")
    )
    reasons["patch_size"] = (
        f"median case at the target spacing is {np.round(typical).astype(int).tolist()} voxels; the patch "
        f"{patch} is the largest the budget allows (capped at {MAX_PATCH_VOXELS[dims]} voxels), rounded to the "
        "network's pooling factors."
    )
    samples_per_case = 1 if dims == 2 else 2
    if len(outcome["validation_cases"]) < len(validating):  # too many, or too large, to validate them all in training
        split["validation_in_training"] = [validating[i].name for i in outcome["validation_cases"]]
        reasons["split"] += f" Training validates {len(outcome['validation_cases'])} of them; evaluate scores all."
    epoch_length = max(1, int(outcome["iterations"] / max(outcome["validations"], 1)))
    validated = split.get("validation_in_training", split["validation"])
    cached = cached_bytes(fp, split["training"] + validated, spacing, scale, cropped)
    rate, reasons["cache"] = cache_rate(cached, available_memory())
    budget = {
        "cache_rate": rate,
        "minutes": budget_minutes,
        "seconds": budget_s,
        "train_step_s": round(timing.train_step_s, 4),
        "augmentation_s": round(timing.augmentation_s, 4),
        "forward_s": round(timing.forward_s, 4),
        "validation_estimate_s": round(outcome["validation_s"], 2),
        "validations_planned": int(outcome["validations"]),
        "iterations_estimate": int(outcome["iterations"]),
        "epoch_length": epoch_length,
        "calibrated_precision": "bf16" if bf16 else "fp32",
        "calibrated": [
            {
                "patch": fit_patch(c.patch, grid_spacing, dims)[0],
                "batch": c.batch,
                "base_width": c.base,
                "train_step_s": round(t.train_step_s, 4),
                "iterations": int(o["iterations"]),
            }
            for c, t, o in measured
        ],
    }
    reasons["budget"] = (
        f"an epoch is {epoch_length} iterations, so about {outcome['validations']} validations "
        f"({outcome['validation_s']:.1f} s each) take about {VALIDATION_SHARE:.0%} of the budget; the learning "
        "rate follows the elapsed time and reaches zero when the budget ends."
    )
    augmentation, reasons["augmentation"] = choose_augmentation(dims, patch, anisotropic_axis)
    sampling, reasons["sampling"] = choose_sampling(fp.class_fractions(), dataset.label_names)
    reasons["selection"] = (
        "the best model is the one with the lowest Rand error of the foreground as a membrane map (ISBI 2012), the "
        "task's own metric, at threshold 0.5 on the validation cases"
        if selection == "rand_error"
        else f"the best model is the one with the highest mean {'region' if dataset.regions else 'foreground'} Dice on "
        "the validation cases"
    )
    inference, reasons["inference"] = choose_inference(dims, patch, anisotropic_axis, outcome["validation_s"], budget_s)
    optimiser, reasons["optimiser"] = choose_optimiser(int(outcome["iterations"]), average_weights)
    return Plan(
        spatial_dims=dims,
        in_channels=fp.channels,
        num_classes=fp.num_classes,
        label_values=dataset.label_values,
        label_names=dataset.label_names,
        channel_names=dataset.channel_names(fp.channels),
        target_spacing=spacing,
        normalisation=normalisation,
        network=net,
        patch_size=patch,
        batch_size=candidate.batch,
        samples_per_case=samples_per_case,
        sampling=sampling,
        augmentation=augmentation,
        loss=loss,
        optimiser=optimiser,
        budget=budget,
        split=split,
        inference=inference,
        device=device,
        seed=seed,
        selection=selection,
        precision=precision,
        label_decoding=fp.label_decoding,
        ignore_value=dataset.ignore_value,
        reasons={**reasons, **decoding_reason(fp.label_decoding)},
    )
