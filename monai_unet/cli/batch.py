"""``monai-unet segment -i SOURCE -o OUTDIR``: every case of a folder or a ``dataset.json``, one network load.

Steps: list the cases (:func:`monai_unet.io.datalist.list_inputs`: a folder of images, one file per case or
``case_0000``/``case_0001``... per channel, or a ``dataset.json``'s ``test`` list); skip the cases whose output
``OUTDIR/<case>_seg<ext>`` exists (unless ``--overwrite``), so an interrupted batch resumes where it stopped; read
every remaining case once, so that a damaged or awkward file is set aside with its reason instead of stopping the
batch; run the bundle's inference config once over the readable cases, writing straight into OUTDIR (each file is
written to a temporary name and renamed, so a file that exists is complete); check each output's grid against its
input's; then one summary line (written, skipped, failed) on stderr and the written paths on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from monai_unet.cli.bundle import BundleRunError, bundle_logs_on_stderr, run_bundle_config
from monai_unet.errors import InputError, UsageError

__all__ = ["BatchReport", "run_batch"]


@dataclass
class BatchReport:
    """What a batch run did, case by case.

    Args:
        written: outputs written by this run.
        skipped: outputs that existed before (kept; ``--overwrite`` replaces them).
        failed: case name → the reason it has no output.
    """

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        line = f"{len(self.written)} written, {len(self.skipped)} skipped (output exists), {len(self.failed)} failed"
        return line + "".join(f"\n  failed: {case}: {reason}" for case, reason in self.failed.items())


def _output_ext(args: argparse.Namespace, config: dict) -> str:
    """``--format``, else the inference config's own ``output_ext`` (``.nii.gz`` when it is not a file suffix)."""
    if args.format:
        return args.format
    value = config.get("output_ext", ".nii.gz")
    return value if isinstance(value, str) and value.startswith(".") else ".nii.gz"


def run_batch(args: argparse.Namespace) -> BatchReport:
    """Segment every case of ``args.input`` into the folder ``args.output``.

    Raises:
        FileNotFoundError, UsageError, ImageInputError: a missing source, an output that is a file, a source that
            lists no images (exit 2). Cases that cannot be read are reported in the summary, not raised.
    """
    from monai_unet.cli.segment import OUTPUT_POSTFIX, _device, _say, open_for_inference
    from monai_unet.cli.source_grid import read_source_grid
    from monai_unet.io.datalist import list_inputs

    if args.inputs:
        raise UsageError(f"{args.inputs[0]}: give either INPUT files or -i FOLDER_or_dataset.json, not both")
    if not args.input.exists():
        raise FileNotFoundError(f"{args.input}: no such folder or dataset.json")
    if args.probabilities is not None:
        raise UsageError(f"{args.probabilities}: --probabilities names one file; with -i it is not available")
    if args.output.exists() and not args.output.is_dir():
        raise UsageError(f"{args.output}: is a file; with -i, -o names the folder the segmentations go to")
    bundle, config, weights = open_for_inference(args)
    ext = _output_ext(args, config)
    cases = list_inputs(args.input, channels=bundle.input_channels or 1)
    names = [case["case"] for case in cases]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UsageError(
            f"{args.input}: several cases are named {', '.join(repeated[:3])}; outputs are named after the case, "
            "so give each case its own file (or folder) name"
        )
    device = _device(args.device)
    args.output.mkdir(parents=True, exist_ok=True)
    report, pending, grids = BatchReport(), [], {}
    for case in cases:
        target = args.output / f"{case['case']}_{OUTPUT_POSTFIX}{ext}"
        if target.exists() and not args.overwrite:
            report.skipped.append(target)
            continue
        images = case["image"] if isinstance(case["image"], list) else [case["image"]]
        try:
            grids[case["case"]] = read_source_grid([Path(p) for p in images])
        except InputError as error:
            report.failed[case["case"]] = str(error)
            continue
        pending.append(case)
    _say(args, f"{len(cases)} case(s) in {args.input}: {len(pending)} to segment on {device}")
    try:
        if pending:
            _run(args, bundle, pending, grids, ext, device, weights, report)
    finally:  # the summary also after a failure or Ctrl-C: what was written stays, a rerun skips it
        print(f"monai-unet segment: {report.summary()}", file=sys.stderr, flush=True)
        for path in report.written:
            print(path, flush=True)  # stdout: the files written, for scripts
    if report.failed:
        raise UsageError(
            f"{args.output}: {len(report.failed)} of {len(cases)} case(s) failed (listed above); the others are "
            "written, and a rerun segments only what is missing"
        )
    return report


def _run(args, bundle, pending: list[dict], grids: dict, ext: str, device, weights: dict, report: BatchReport) -> None:
    """One run of the inference config over ``pending``, then each output checked against its input's grid."""
    from monai_unet.cli.segment import OUTPUT_POSTFIX, inference_overrides
    from monai_unet.cli.source_grid import check_output_grid
    from monai_unet.io.naming import strip_image_suffix

    ndim = next(iter(grids.values())).ndim
    overrides = inference_overrides(args, pending, args.output.resolve(), ext, device, ndim, weights)
    try:
        with bundle_logs_on_stderr(verbose=args.verbose):
            run_bundle_config(bundle, ["inference"], overrides)
    finally:
        for case in pending:
            target = args.output / f"{case['case']}_{OUTPUT_POSTFIX}{ext}"
            first = case["image"][0] if isinstance(case["image"], list) else case["image"]
            # a bundle that ignores the "case" id names the output after its first file: give it the case's name
            by_file = args.output / f"{strip_image_suffix(Path(first).name)}_{OUTPUT_POSTFIX}{ext}"
            if not target.exists() and by_file.exists():
                os.replace(by_file, target)
            if not target.exists():
                report.failed.setdefault(case["case"], "no output (the run stopped before this case)")
                continue
            try:
                check_output_grid(target, grids[case["case"]])
            except BundleRunError as error:
                target.unlink()
                report.failed[case["case"]] = str(error)
                continue
            report.written.append(target)
