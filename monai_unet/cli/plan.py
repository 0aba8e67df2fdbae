"""``monai-unet plan``: measure a labelled dataset, derive the recipe, and write a bundle that trains within a budget.

Reads an MSD-style ``dataset.json`` or an MSD/nnU-Net folder (``imagesTr/``, ``labelsTr/``), checks every case
(one line naming the case and the problem, before anything is trained), measures it (the fingerprint), times the
training step on this machine, and writes a MONAI bundle: ``configs/train.json``, ``evaluate.json``,
``inference.json``, ``multi_gpu_train.json``, ``metadata.json``, ``plans.json`` (every choice with its reason and
the fingerprint), ``split.json``, ``docs/README.md`` and ``LICENSE`` (the dataset's terms). Stdout carries only the
bundle's path; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from monai_unet.errors import UsageError, listed

__all__ = ["register", "run"]

EXAMPLES = """examples:
  monai-unet plan data/Task02_Heart -o bundles/heart --budget-min 20
  monai-unet plan data/polyps/dataset.json -o polyps_bundle --fold 1 --name "Polyp segmentation"
  monai-unet train --bundle bundles/heart      # then evaluate, infer, segment

exit codes: 0 success, 2 bad dataset or arguments (one line naming the case or file), 1 internal error."""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "plan",
        help="derive a recipe from a labelled dataset and write a bundle",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    parser.add_argument("dataset", type=Path, metavar="DATASET", help="a dataset.json or an MSD/nnU-Net folder")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="BUNDLE_DIR", help="the bundle to write")
    parser.add_argument(
        "--budget-min",
        type=float,
        default=20.0,
        metavar="M",
        help="wall-clock minutes for the whole training, validation included (default 20)",
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where training will run")
    parser.add_argument(
        "--fold",
        type=_fold,
        default=0,
        metavar="K",
        help="cross-validation fold held out (default 0), or 'all': train on every case and validate on them too "
        "(a single-case dataset, or final weights after cross-validation; the validation metric is then not held out)",
    )
    parser.add_argument(
        "--select-by",
        choices=("dice", "rand_error"),  # monai_unet.plan.recipe.SELECTION_METRICS (imported lazily)
        default="dice",
        help="the validation metric that picks the best model: mean foreground Dice (default), or the ISBI 2012 "
        "Rand error for 2D membrane (boundary) maps",
    )
    parser.add_argument(
        "--no-average-weights",
        dest="average_weights",
        action="store_false",
        help="validations and the best model use the weights as trained, not their moving average (the default: "
        "half-life 5%% of the planned steps; plans.json gives the reason)",
    )
    parser.add_argument(
        "--deep-supervision",
        action="store_true",
        help="nnU-Net's deep supervision: output heads and the loss at every decoder resolution but the two lowest "
        "(off by default: level on ACDC, lower on a BRATS fold; benchmarks/RESULTS.md)",
    )
    parser.add_argument(
        "--norm",
        choices=("instance", "batch"),
        default="instance",
        help="the network's normalisation: instance (default, nnU-Net's) or batch (the stock MONAI recipes'; it won "
        "a BRATS fold that instance norm lost, and lost on ACDC: benchmarks/RESULTS.md)",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),  # monai_unet.inferers.PRECISIONS (imported lazily)
        default="auto",
        help="training precision: auto (default) runs the forward pass in bfloat16 where the hardware does it natively "
        "(CPUs with AVX512-BF16 or AMX, GPUs with bf16), fp32 never; the step is timed at it. Training can still "
        "override it: monai-unet train --bundle B precision=fp32",
    )
    parser.add_argument("--name", help="the bundle's name (default: the dataset's)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--force", action="store_true", help="replace BUNDLE_DIR when it exists")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.set_defaults(run=run)


def _fold(text: str) -> int | str:
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fold number or 'all', got {text!r}") from None


def _say(message: str) -> None:
    print(f"monai-unet plan: {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> Path:
    """Plan the dataset and write the bundle; returns the bundle folder."""
    if args.output.exists() and not args.force:
        raise UsageError(f"{args.output}: already exists; choose another folder or pass --force to replace it")
    if args.budget_min <= 0:
        raise UsageError(f"--budget-min must be a positive number of minutes, got {args.budget_min}")
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("cuda: no CUDA device is available to torch here; plan with --device cpu")
    from monai_unet.plan import make_plan, measure, read_dataset
    from monai_unet.plan.bundle import write_bundle

    dataset = read_dataset(args.dataset, progress=args.progress)
    _say(f"{dataset.name}: {len(dataset.training)} training, {len(dataset.validation)} validation cases")
    if dataset.labels_found:
        values = listed([str(v) for v in dataset.label_values], 8)
        _say(
            f"warning: no 'labels' in the dataset; the label files hold {values}: value "
            f"{dataset.label_values[0]} is the background and the others are named {listed(dataset.label_names[1:])}; "
            "add 'labels' to dataset.json to name them"
        )
    uncoded = [name for index, name in enumerate(dataset.label_names) if index and index not in dataset.terminology]
    if uncoded:
        _say(
            f"warning: no SNOMED CT codes for {len(uncoded)} class(es), {listed(uncoded)} (dataset.json "
            "'terminology'); their segments are written as the generic 'Tissue' in .seg.nrrd and DICOM SEG"
        )
    start = time.monotonic()
    fingerprint = measure(dataset, seed=args.seed, progress=args.progress)
    read_seconds = time.monotonic() - start
    _say(f"measured in {read_seconds:.1f} s; timing the training step on {args.device}")
    if fingerprint.label_decoding.get("lossy"):
        _say(
            "warning: label files saved as JPEG (lossy) hold values between the classes along every edge; each "
            "value is read as the nearest declared label value (plans.json reasons.labels); PNG labels avoid it"
        )
    plan = make_plan(
        dataset,
        fingerprint,
        args.budget_min,
        device=args.device,
        fold=args.fold,
        seed=args.seed,
        read_seconds=read_seconds,
        selection=args.select_by,
        average_weights=args.average_weights,
        deep_supervision=args.deep_supervision,
        norm=args.norm,
        precision=args.precision,
    )
    name = args.name or dataset.name
    bundle = write_bundle(args.output, plan, dataset, fingerprint, name, force=args.force)
    _say(
        f"{plan.spatial_dims}D, patch {plan.patch_size}, batch {plan.batch_size}, "
        f"widths {plan.network['features']}, about {plan.budget['iterations_estimate']} iterations in "
        f"{args.budget_min:g} min ({plan.budget['calibrated_precision']})"
    )
    print(bundle)
    return bundle
