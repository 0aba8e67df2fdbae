"""What one run of a bundle's inference config needs from ``monai-unet segment``, for one scan (:mod:`.segment`) and
for many (:mod:`.batch`): the bundle opened against the CLI contract, the scan's grid checked against the bundle and
the output format, the device, and the contract ids set for the run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from monai_unet.cli.bundle import Bundle, open_bundle, unloadable_weights, weights_path
from monai_unet.cli.source_grid import SourceScan
from monai_unet.errors import UsageError
from monai_unet.io.formats import find_format

__all__ = [
    "OUTPUT_POSTFIX",
    "PROBABILITY_POSTFIX",
    "check_grid_for_output",
    "choose_device",
    "inference_overrides",
    "open_for_inference",
    "say",
]

#: ``output_postfix`` given to the bundle: its writer names the label file ``<case>_seg<ext>``.
OUTPUT_POSTFIX = "seg"

#: Postfix of the probability file the bundles write with ``save_probabilities`` (``<case>_prob.nii.gz``/``.tif``).
PROBABILITY_POSTFIX = "prob"


def say(args: argparse.Namespace, message: str) -> None:
    """A stage line on stderr (unless ``--no-progress``)."""
    if args.progress:
        print(f"monai-unet segment: {message}", file=sys.stderr, flush=True)


def open_for_inference(args: argparse.Namespace) -> tuple[Bundle, dict[str, Any]]:
    """Open ``--bundle``, check its inference config against the CLI contract (with ``ckpt_path`` when
    ``--checkpoint`` is given) and the weights file, before any image is read.

    Returns:
        The bundle and its inference config as written.

    Raises:
        FileNotFoundError: the ``--checkpoint`` file does not exist.
        UsageError: no such bundle, an inference config without an id the CLI sets, or no weights file where the
            config's ``ckpt_path`` points (a bundle not trained yet).
    """
    bundle = open_bundle(args.bundle)
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise FileNotFoundError(f"{args.checkpoint}: no such weights file")
    also = ["ckpt_path"] * (args.checkpoint is not None) + ["dicom_resample"] * args.resample
    config = bundle.check_inference_contract(also=also)
    weights = None if args.checkpoint is not None else _weights_file(bundle)
    if weights is not None and not weights.exists():
        raise unloadable_weights(weights, FileNotFoundError(weights))
    return bundle, config


def _weights_file(bundle: Bundle) -> Path | None:
    """The weights file the inference config loads (:func:`~monai_unet.cli.bundle.weights_path`, evaluated from the
    config alone); None where that needs the run (the run then names the problem)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(bundle.config("inference")))
    parser["bundle_root"] = str(bundle.root)
    found = weights_path(parser)
    return Path(found) if found else None


def inference_overrides(
    args: argparse.Namespace,
    datalist: list[dict],
    output_dir: Path,
    ext: str,
    device: Any,
    spatial_dims: int,
    save_probabilities: bool = False,
) -> dict[str, Any]:
    """The contract ids (:data:`~monai_unet.cli.bundle.INFERENCE_PROPERTIES`) set for one run of the inference
    config; review overlays stay off (they are for the bundles' own batch runs). ``ckpt_path`` and
    ``dicom_resample`` only when ``--checkpoint`` and ``--resample`` ask for them."""
    return {
        "datalist": datalist,
        "output_dir": str(output_dir),
        "output_ext": ext,
        "output_postfix": OUTPUT_POSTFIX,
        "device": device,
        **({} if args.tta is None else {"tta_axes": list(range(spatial_dims)) if args.tta else []}),
        "precise": bool(args.precise),
        "save_probabilities": save_probabilities,
        "progress": bool(args.progress),
        "save_overlays": False,
        **({"ckpt_path": str(args.checkpoint.resolve())} if args.checkpoint is not None else {}),
        **({"dicom_resample": True} if args.resample else {}),
    }


def choose_device(requested: str | None):
    """The torch device for ``--device`` (None: CUDA when torch sees one, else the CPU)."""
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise UsageError("cuda: no CUDA device is available to torch here; use --device cpu")
    return torch.device(requested or ("cuda" if torch.cuda.is_available() else "cpu"))


def check_grid_for_output(
    bundle: Bundle, scan: SourceScan, ext: str, source: Path, output: Path, resample: bool = False
) -> None:
    """Refuse, before the inference, a scan the bundle or the output format cannot take: ``source`` (its first
    input) was read as ``scan``; ``output`` is the path (or, in a batch, the case's output) in format ``ext``.

    Raises:
        UsageError: wrong number of dimensions for the bundle, a 3D scan to a ``.png``, a DICOM SEG of something
            that is not a DICOM series with a frame of reference (or resampled off its slices).
    """
    if ext == "dicomseg" and resample:
        raise UsageError(
            f"{output}: with --resample the output lies on a new grid, not on the series' slices, "
            "so it cannot be a DICOM SEG of them; name the output .nii.gz or .seg.nrrd"
        )
    if ext == "dicomseg" and not scan.is_dicom:
        raise UsageError(
            f"{output}: DICOM SEG output needs a DICOM series as input ({source} is not); "
            "name the output .nii.gz or .seg.nrrd"
        )
    dims = len(bundle.input_spatial_shape)
    if dims in (2, 3) and scan.grid.ndim != dims:
        raise UsageError(
            f"{source}: is a {scan.grid.ndim}D image, but the bundle {bundle.root.name} segments {dims}D images"
            + (
                "; give it one slice as a picture (PNG/TIFF)"
                if dims == 2
                else "; give it a volume (NIfTI, NRRD, DICOM)"
            )
        )
    if find_format(ext).planar and scan.grid.ndim != 2:
        raise UsageError(f"{output}: a {ext} output holds one 2D slice; name a .nii.gz or .seg.nrrd for 3D input")
    if ext == "dicomseg" and not scan.frame_of_reference:
        raise UsageError(
            f"{source}: the series has no FrameOfReferenceUID, which a DICOM SEG must share with the images "
            "it segments; name the output .nii.gz or .seg.nrrd, or have the series exported with its frame of reference"
        )
