"""``monai-unet segment``: a scan in, a segmentation on the scan's own grid out, through a bundle's inference config.

Steps: check the arguments (inputs exist, the bundle has ``configs/inference.json``, the output's form follows
from its name, one input per channel the bundle expects); read every input's headers with
:class:`~monai_unet.io.SimpleITKReader` (no voxel is decoded), so that an unreadable header or an awkward DICOM series
is refused with one line naming it before any work (damaged voxel data is refused the same way when the bundle reads
the scan, its only decoding); run the bundle's ``configs/inference.json`` exactly as ``python -m monai.bundle run``
would (see :mod:`monai_unet.cli.bundle`), with ``datalist``, ``output_dir`` (a fresh folder beside OUTPUT),
``output_ext``, ``device``, ``tta_axes``, ``precise``, ``save_probabilities`` and ``progress`` overridden; check
that the written segmentation has the input's size, origin, spacing and direction; and only then move it to
OUTPUT with one rename. An error at any step leaves no file at OUTPUT (an existing OUTPUT stays as it was).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from monai_unet.cli.batch import add_batch_arguments
from monai_unet.cli.bundle import Bundle, BundleRunError, bundle_logs_on_stderr, open_bundle, run_bundle_config
from monai_unet.cli.channels import named_channel_inputs
from monai_unet.cli.inference_run import (
    OUTPUT_POSTFIX,
    PROBABILITY_POSTFIX,
    check_grid_for_output,
    choose_device,
    inference_overrides,
    open_for_inference,
    say,
)
from monai_unet.cli.source_grid import add_resample_argument, check_output_grid, damaged_input, read_source_scan
from monai_unet.errors import UsageError
from monai_unet.io.formats import LABEL_FORMATS, find_format

__all__ = ["LABEL_EXTENSIONS", "output_ext_for", "register", "run"]

#: Label-map formats with a suffix (:mod:`monai_unet.io.formats`); a name without suffix is a DICOM SEG folder.
LABEL_EXTENSIONS = tuple(key for key in LABEL_FORMATS if key.startswith("."))

EXAMPLES = """examples:
  monai-unet segment scan.nii.gz -o scan_seg.nii.gz --bundle bundles/em_membrane_segmentation
  monai-unet segment flair.nii.gz t1c.nii.gz -o tumour.seg.nrrd --bundle bundles/brain_tumor_mri_segmentation --tta
  monai-unet segment --channel T1c=t1c.nii.gz --channel FLAIR=flair.nii.gz -o tumour.nii.gz \
      --bundle brain_tumor_mri_segmentation   # inputs by channel name, in any order
  monai-unet segment dicom/CT_series/ -o seg_dicom/ --bundle my_ct_bundle --device cpu --precise
  monai-unet segment -i scans/ -o segmentations/ --bundle my_ct_bundle --format .seg.nrrd   # every case, resumable
  monai-unet segment -i scans/ -o segmentations/ --bundle my_ct_bundle --num-parts 4 --part-id 0   # job 1 of 4

OUTPUT's form follows its name: .nii.gz or .nii (NIfTI label map), .seg.nrrd (3D Slicer segmentation with
the bundle's segment names and colours), or a name without suffix: a folder holding a DICOM SEG
(segmentation.dcm) that references the input series (DICOM input only).

exit codes: 0 success, 2 bad input or arguments (one line naming the file), 1 internal error."""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "segment",
        help="segment a scan with a bundle; the output lies on the scan's grid",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        type=Path,
        metavar="INPUT",
        help="NIfTI/NRRD/MHA/PNG/JPEG/TIFF/GIF/BMP file or DICOM series folder, one per input channel, in the "
        "bundle's order",
    )
    parser.add_argument(
        "--channel",
        action="append",
        metavar="NAME=INPUT",
        help="an input by its channel name instead of by position, once per channel (e.g. --channel FLAIR=flair.nii.gz "
        "--channel T1c=t1c.nii.gz; names from the bundle's metadata, case-insensitive)",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        help="OUTPUT: .nii.gz, .seg.nrrd, or a folder for DICOM SEG; with -i, the folder for every case's output",
    )
    add_batch_arguments(parser, LABEL_EXTENSIONS)
    add_resample_argument(parser)
    parser.add_argument("--bundle", required=True, type=Path, help="the bundle folder (configs/inference.json)")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="WEIGHTS",
        help="run the bundle with these weights (a state_dict .pt, e.g. a run's model.pt) instead of models/model.pt",
    )
    parser.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="test-time augmentation: average over the input mirrored along every axis (--no-tta: never); default: "
        "what the bundle says (a planned bundle's training decides: plans.json postprocessing.tta_axes)",
    )
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default=None, help="where to run; default cuda when available, else cpu"
    )
    parser.add_argument(
        "--probabilities",
        type=Path,
        metavar="PATH",
        help="also write the foreground probabilities to PATH, in the bundle's format (.nii.gz; .tif for 2D EM)",
    )
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument(
        "--fast", dest="precise", action="store_false", help="the fast path: folded BN, bf16 where supported (default)"
    )
    speed.add_argument("--precise", dest="precise", action="store_true", help="strict float32 throughout")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="print stages and a progress bar on stderr (default on)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show the bundle's informational log lines (MONAI, ignite) on stderr; warnings always show",
    )
    parser.set_defaults(run=run, precise=False)


def output_ext_for(output: Path) -> str:
    """The bundle's ``output_ext`` for OUTPUT: ``".nii.gz"``, ``".nii"``, ``".seg.nrrd"``, ``"dicomseg"``, or
    ``".png"`` (2D bundles that write PNG label images, such as the EM bundle).

    Raises:
        UsageError: a suffix that names no segmentation format (``.nrrd``, ``.mha``, ``.dcm``, ...).
    """
    found = find_format(output)
    if found is None or not found.holds():
        raise UsageError(
            f"{output}: cannot tell the output format from the suffix {output.suffix!r}; use .nii.gz, .seg.nrrd, "
            ".png (2D bundles), or a folder name without suffix for DICOM SEG"
        )
    return found.key


def _same_path(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return a.samefile(b)
    return a.resolve() == b.resolve()


def _refuse_overlap(args: argparse.Namespace) -> None:
    """An output that is an input (or the probabilities that are the output) would destroy what it is made from."""
    for path in args.inputs:
        for flag, target in (("-o", args.output), ("--probabilities", args.probabilities)):
            if target is not None and _same_path(path, target):
                raise UsageError(
                    f"{target}: {flag} names an input; the input would be overwritten, choose another path"
                )
    if args.probabilities is not None and _same_path(args.output, args.probabilities):
        raise UsageError(f"{args.output}: -o and --probabilities name the same path; give them different names")


def _holds_channels(inputs: list[Path], channels: int) -> bool:
    """One file holding every channel, told from its header: an RGB picture for a 3-channel bundle, or a 4D file
    with a volume per channel (the Decathlon's multi-modal images)."""
    from monai_unet.io.image_file import channels_in_file

    return len(inputs) == 1 and channels > 1 and channels_in_file(inputs[0]) == channels


def _check_arguments(args: argparse.Namespace) -> tuple[Bundle, str]:
    """Checks that need no image reading; returns the bundle and the ``output_ext``."""
    for path in args.inputs:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
    bundle, _ = open_for_inference(args)
    channels = bundle.input_channels
    if channels is not None and len(args.inputs) != channels and not _holds_channels(args.inputs, channels):
        names = f" ({', '.join(bundle.channel_names)})" if bundle.channel_names else ""
        raise UsageError(
            f"{args.inputs[0]}: {len(args.inputs)} input(s) given, but the bundle {bundle.root.name} takes "
            f"{channels} channel(s){names}; pass one file or DICOM folder per channel, in that order (or one file "
            f"holding {channels}: a 4D file, an RGB picture)"
        )
    _refuse_overlap(args)
    ext = output_ext_for(args.output)
    if args.output.is_dir() and ext != "dicomseg":
        raise UsageError(f"{args.output}: is a folder; name a file ending in {ext}")
    if args.output.exists() and not args.output.is_dir() and ext == "dicomseg":
        raise UsageError(f"{args.output}: is a file; DICOM SEG output is a folder (or name a .nii.gz/.seg.nrrd file)")
    for target in (args.output, args.probabilities):
        if target is not None and not target.resolve().parent.is_dir():
            raise FileNotFoundError(f"{target}: the folder {target.resolve().parent} does not exist; create it first")
    return bundle, ext


def _recorded(workflow: Any, out_dir: Path) -> dict[str, Path]:
    """Data key → the file its writer recorded in the prediction's meta (``saved_to``: our ``SavePredictiond``, and
    MONAI's ``SaveImage`` with ``savepath_in_metadict``) for the case just run; only paths inside ``out_dir``."""
    try:  # the instance that ran (``run: $@evaluator.run()``), not a new one
        output = workflow.parser.get_parsed_content("evaluator").state.output
    except (KeyError, AttributeError):  # no evaluator id, or not an ignite engine: the files are found by name
        return {}
    recorded = {}
    for item in output if isinstance(output, list) else [output]:
        for key, value in item.items() if isinstance(item, dict) else ():
            saved = getattr(value, "meta", {}).get("saved_to") if hasattr(value, "meta") else None
            if saved and Path(saved).resolve().is_relative_to(out_dir.resolve()) and Path(saved).exists():
                recorded[str(key)] = Path(saved)
    return recorded


def _produced(out_dir: Path, ext: str, want_probabilities: bool, recorded: dict[str, Path]) -> tuple[Path, Path | None]:
    """The label output (and the probabilities) the bundle wrote into the fresh ``out_dir``: where its writers
    recorded them (``pred``, and another key for the probabilities), else found by the contract's names."""
    labels = recorded.get("pred")
    if labels is not None and ext == "dicomseg":
        labels = labels.parent  # the writer records <folder>/segmentation.dcm
    written = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())
    if labels is None:
        if ext == "dicomseg":
            found = [p for p in out_dir.rglob(f"*_{OUTPUT_POSTFIX}") if p.is_dir() and any(p.glob("*.dcm"))]
        else:
            found = [p for p in out_dir.rglob(f"*_{OUTPUT_POSTFIX}{ext}") if p.is_file()]
        if len(found) != 1:
            raise BundleRunError(
                f"{out_dir}: expected one segmentation named *_{OUTPUT_POSTFIX}{'' if ext == 'dicomseg' else ext} "
                f"from the bundle, found {len(found)} (files written: {written or 'none'}); check the bundle's "
                "output ids"
            )
        labels = found[0]
    if not want_probabilities:
        return labels, None
    inside = set(labels.rglob("*")) if labels.is_dir() else {labels}
    others = [path for key, path in recorded.items() if key != "pred" and path not in inside]
    if len(others) == 1:
        return labels, others[0]
    candidates = [p for p in out_dir.rglob(f"*_{PROBABILITY_POSTFIX}.*") if p.is_file() and p not in inside]
    if len(candidates) != 1:
        raise BundleRunError(
            f"{out_dir}: expected one probability file *_{PROBABILITY_POSTFIX}.* from the bundle with "
            f"save_probabilities, found {len(candidates)} (files written: {written}); does the bundle honour "
            "save_probabilities?"
        )
    return labels, candidates[0]


def _case_name(output: Path, ext: str) -> str:
    """OUTPUT's name without its format suffix (``scan.seg.nrrd`` → ``scan``)."""
    name = output.name
    return name[: -len(ext)] if ext != "dicomseg" and name.lower().endswith(ext) else name


def _check_same_format(produced: Path, target: Path) -> None:
    """Refuse to store the bundle's probability file under a name of another format."""
    made = find_format(produced)
    if made is None or find_format(target) != made:
        suffix = made.key if made is not None else produced.suffix
        raise UsageError(f"{target}: the bundle writes probabilities as {suffix}; name the file *{suffix}")


def _place(produced: Path, target: Path) -> None:
    """Move a finished output to ``target`` with one rename (a DICOM SEG folder's files into ``target/``)."""
    if produced.is_dir():
        if not target.exists():
            os.replace(produced, target)
            return
        for item in sorted(produced.iterdir()):
            os.replace(item, target / item.name)
        return
    os.replace(produced, target)


def run(args: argparse.Namespace) -> Path:
    """Run the command; returns OUTPUT. Raises ``UsageError``/``FileNotFoundError`` for bad input (exit 2)."""
    if args.channel:
        if args.inputs or args.input is not None:
            raise UsageError("--channel names one case's inputs: give them by position or by name, not both, not -i")
        args.inputs = named_channel_inputs(args.channel, open_bundle(args.bundle))
    if args.input is not None:
        from monai_unet.cli.batch import run_batch

        run_batch(args)
        return args.output
    if not args.inputs:
        raise UsageError("no input: give the scan (one file or DICOM folder per channel), or -i FOLDER for many")
    if args.format or args.overwrite or args.num_parts != 1 or args.part_id != 0:
        raise UsageError(
            "--format, --overwrite, --num-parts and --part-id go with -i FOLDER; for one scan, OUTPUT's name sets "
            "the format"
        )
    bundle, ext = _check_arguments(args)
    device = choose_device(args.device)
    say(args, f"reading {len(args.inputs)} input(s)")
    scan = read_source_scan(list(args.inputs), resample=args.resample, channels=bundle.input_channels)
    check_grid_for_output(bundle, scan, ext, args.inputs[0], args.output, resample=args.resample)
    size = " x ".join(str(s) for s in scan.grid.size)
    say(args, f"input grid {size} voxels; running {bundle.root.name} inference on {device}")
    image = [str(p.resolve()) for p in args.inputs]
    target = args.output.resolve()
    from monai_unet.io import OutputWriteError
    from monai_unet.io.atomic import sweep_temporaries

    for left in sweep_temporaries(target.parent, target.name, ".monai-unet"):
        say(args, f"removed {left}, left behind by an interrupted run")
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".monai-unet", dir=target.parent))
    try:
        out_dir = staging / "out"
        out_dir.mkdir()
        # "case" names the outputs in bundles that take it (the BRATS bundle: subject folders share file names)
        datalist = [{"image": image if len(image) > 1 else image[0], "case": _case_name(target, ext)}]
        overrides = inference_overrides(
            args, datalist, out_dir, ext, device, scan.grid.ndim, save_probabilities=args.probabilities is not None
        )
        with bundle_logs_on_stderr(verbose=args.verbose):
            try:
                workflow = run_bundle_config(bundle, ["inference"], overrides)
            except OutputWriteError as error:  # it happened in the staging folder: name the user's output
                failed = args.output
                if args.probabilities is not None and f"_{PROBABILITY_POSTFIX}" in Path(error.path).name:
                    failed = args.probabilities
                raise OutputWriteError(failed, error.problem, error.hint) from None
            except BundleRunError as error:  # the bundle's own reader may have met damaged voxels: ours names them
                damaged = damaged_input(list(args.inputs), resample=args.resample, channels=bundle.input_channels)
                if damaged is None:
                    raise
                raise damaged from error
        recorded = _recorded(workflow, out_dir)
        labels, probabilities = _produced(out_dir, ext, args.probabilities is not None, recorded)
        if ext != "dicomseg":
            check_output_grid(labels, scan.grid)
        if probabilities is not None:
            _check_same_format(probabilities, args.probabilities)
            check_output_grid(probabilities, scan.grid)
            _place(probabilities, args.probabilities.resolve())
        _place(labels, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    names = ", ".join(f"{value} {name}" for value, name in sorted(bundle.label_names.items()))
    say(args, f"wrote {args.output} (segments: {names or 'unnamed'})")
    print(args.output)  # stdout carries only the answer, for scripts: OUTPUT's path
    return args.output
