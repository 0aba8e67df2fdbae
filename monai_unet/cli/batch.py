"""``monai-unet segment -i SOURCE -o OUTDIR``: every case of a folder or a ``dataset.json``, one network load.

Steps: list the cases (:func:`monai_unet.io.datalist.list_inputs`: a folder of images, one file per case or
``case_0000``/``case_0001``... per channel, or a ``dataset.json``'s ``test`` list); skip the cases whose output
``OUTDIR/<case>_seg<ext>`` exists (unless ``--overwrite``), so an interrupted batch resumes where it stopped; read
every remaining case's headers (no voxel is decoded), so that an unreadable header or an awkward series is set aside
with its reason; run the bundle's inference config once over the other cases, writing straight into OUTDIR (each file
is written to a temporary name and renamed, so a file that exists is complete). A case whose voxels the bundle's
reader refuses (damaged data: a truncated ``.nii.gz``, NaN voxels) stops that run: it is set aside with the reader's
message and the run starts again over the cases not yet written. Then each output's grid is checked against its
input's, and one summary line (written, skipped, failed) goes to stderr and the written paths to stdout.

``--num-parts P --part-id I`` (nnU-Net's convention) keeps every P-th case of the sorted list starting at the
I-th, so P jobs of a cluster array (or P processes on one machine) share a batch without overlap, each loading the
network once; together they write every case exactly once.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from monai_unet.cli.bundle import BundleRunError, bundle_logs_on_stderr, run_bundle_config
from monai_unet.cli.inference_run import (
    OUTPUT_POSTFIX,
    check_grid_for_output,
    choose_device,
    inference_overrides,
    open_for_inference,
    say,
)
from monai_unet.cli.source_grid import check_output_grid, damaged_input, read_source_scan
from monai_unet.errors import InputError, UsageError

__all__ = ["BatchReport", "add_batch_arguments", "cases_of_part", "check_part", "run_batch"]

#: After a run failed with an error our reader did not raise, the unwritten cases decoded to find a damaged one: the
#: case the run stopped at is the first, unless its data loader had read ahead.
_CASES_CHECKED_AFTER_A_FAILURE = 4


def add_batch_arguments(parser: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    """The options of ``segment -i``: the source, the outputs' format, overwriting, and sharding."""
    parser.add_argument(
        "-i",
        "--input",
        type=Path,
        metavar="SOURCE",
        help="many cases in one run: a folder of images (case_0000, case_0001... per channel for several "
        "channels) or a dataset.json's test list; -o is then the output folder (<case>_seg<ext> per case)",
    )
    parser.add_argument("--format", choices=formats, help="with -i: the outputs' format (default: the bundle's)")
    parser.add_argument(
        "--overwrite", action="store_true", help="with -i: segment cases whose output exists again (default: skip)"
    )
    parser.add_argument(
        "--num-parts",
        type=int,
        default=1,
        metavar="P",
        help="with -i: split the cases into P parts (for P jobs or processes) and segment only --part-id's",
    )
    parser.add_argument(
        "--part-id", type=int, default=0, metavar="I", help="with --num-parts: which part this run does, 0 to P-1"
    )


def check_part(num_parts: int, part_id: int) -> None:
    """Refuse ``--num-parts`` < 1, or a ``--part-id`` outside ``0 .. num_parts - 1`` (raises ``UsageError``)."""
    if num_parts < 1:
        raise UsageError(f"--num-parts must be 1 or more, got {num_parts}")
    if not 0 <= part_id < num_parts:
        raise UsageError(f"--part-id must be between 0 and {num_parts - 1} for --num-parts {num_parts}, got {part_id}")


def cases_of_part(cases: list[dict], num_parts: int, part_id: int) -> list[dict]:
    """Part ``part_id`` of ``num_parts`` of ``cases`` (checked by :func:`check_part`): every ``num_parts``-th case
    by name, from the ``part_id``-th (the same split in every job, whatever order the source lists them in)."""
    check_part(num_parts, part_id)
    return sorted(cases, key=lambda case: case["case"])[part_id::num_parts]


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


def _target(output: Path, case: dict, ext: str) -> Path:
    """Where the segmentation of ``case`` goes in the folder ``output``: ``<case>_seg<ext>``."""
    return output / f"{case['case']}_{OUTPUT_POSTFIX}{ext}"


def _refuse_overlap(args: argparse.Namespace, cases: list[dict], ext: str) -> None:
    """Refuse, before any work, an output path that is one of the inputs (``-o`` the same folder as ``-i`` is
    refused before the listing)."""
    output = args.output.resolve()
    inputs = {
        Path(p).resolve()
        for case in cases
        for p in (case["image"] if isinstance(case["image"], list) else [case["image"]])
    }
    for case in cases:
        target = _target(output, case, ext)
        if target in inputs:
            raise UsageError(f"{target}: the output of case {case['case']} is one of the inputs; choose another -o")


def run_batch(args: argparse.Namespace) -> BatchReport:
    """Segment every case of ``args.input`` into the folder ``args.output``.

    Raises:
        FileNotFoundError, UsageError, ImageInputError: a missing source, an output that is a file, a source that
            lists no images (exit 2). Cases that cannot be read are reported in the summary, not raised.
    """
    from monai_unet.io.datalist import list_inputs

    if args.inputs:
        raise UsageError(f"{args.inputs[0]}: give either INPUT files or -i FOLDER_or_dataset.json, not both")
    check_part(args.num_parts, args.part_id)  # before any work
    if not args.input.exists():
        raise FileNotFoundError(f"{args.input}: no such folder or dataset.json")
    if args.probabilities is not None:
        raise UsageError(f"{args.probabilities}: --probabilities names one file; with -i it is not available")
    if args.output.exists() and not args.output.is_dir():
        raise UsageError(f"{args.output}: is a file; with -i, -o names the folder the segmentations go to")
    if args.input.is_dir() and args.input.resolve() == args.output.resolve():
        raise UsageError(
            f"{args.output}: -o is the folder -i reads; the segmentations would be read as scans on the next run, "
            "choose another folder"
        )
    bundle, config = open_for_inference(args)
    ext = _output_ext(args, config)
    cases = list_inputs(args.input, channels=bundle.input_channels or 1)
    names = [case["case"] for case in cases]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UsageError(
            f"{args.input}: several cases are named {', '.join(repeated[:3])}; outputs are named after the case, "
            "so give each case its own file (or folder) name"
        )
    _refuse_overlap(args, cases, ext)
    listed = len(cases)
    cases = cases_of_part(cases, args.num_parts, args.part_id)
    device = choose_device(args.device)
    args.output.mkdir(parents=True, exist_ok=True)
    report, pending, scans = BatchReport(), [], {}
    for case in cases:
        target = _target(args.output, case, ext)
        if target.exists() and not args.overwrite:
            report.skipped.append(target)
            continue
        images = _images(case)
        try:
            scans[case["case"]] = read_source_scan(
                [Path(p) for p in images], resample=args.resample, channels=bundle.input_channels
            )
            check_grid_for_output(bundle, scans[case["case"]], ext, Path(images[0]), target, resample=args.resample)
        except InputError as error:
            report.failed[case["case"]] = str(error)
            continue
        pending.append(case)
    part = f" (part {args.part_id} of {args.num_parts}: {len(cases)} case(s))" if args.num_parts > 1 else ""
    say(args, f"{listed} case(s) in {args.input}{part}: {len(pending)} to segment on {device}")
    try:
        if pending:
            _run(args, bundle, pending, scans, ext, device, report)
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


def _run(args, bundle, pending: list[dict], scans: dict, ext: str, device, report: BatchReport) -> None:
    """Runs of the inference config over ``pending`` (one, unless a case's voxels turn out damaged: that case is set
    aside and the others not yet written run again), then each output checked against its input's grid."""
    from monai_unet.io import ImageInputError

    ndim = next(iter(scans.values())).grid.ndim
    remaining = list(pending)
    try:
        while remaining:
            overrides = inference_overrides(args, remaining, args.output.resolve(), ext, device, ndim)
            try:
                with bundle_logs_on_stderr(verbose=args.verbose):
                    run_bundle_config(bundle, ["inference"], overrides)
                remaining = []
            except (ImageInputError, BundleRunError) as error:
                unwritten = [c for c in remaining if _settled(args, c, ext) is None]
                damaged, reason = _damaged_case(args, error, unwritten, bundle.input_channels)
                if damaged is None:
                    raise
                report.failed[damaged["case"]] = str(reason)
                say(args, f"set aside case {damaged['case']}: {reason}")
                remaining = [c for c in unwritten if c is not damaged]
    finally:
        for case in pending:
            target = _settled(args, case, ext)
            if target is None:
                report.failed.setdefault(case["case"], "no output (the run stopped before this case)")
                continue
            try:
                check_output_grid(target, scans[case["case"]].grid)
            except BundleRunError as error:
                target.unlink()
                report.failed[case["case"]] = str(error)
                continue
            report.written.append(target)


def _images(case: dict) -> list[str]:
    return case["image"] if isinstance(case["image"], list) else [case["image"]]


def _settled(args: argparse.Namespace, case: dict, ext: str) -> Path | None:
    """The case's output in OUTDIR once written, else None. A bundle that ignores the "case" id names the output
    after its first file: it is given the case's name."""
    from monai_unet.io.naming import strip_image_suffix

    target = _target(args.output, case, ext)
    by_file = args.output / f"{strip_image_suffix(Path(_images(case)[0]).name)}_{OUTPUT_POSTFIX}{ext}"
    if not target.exists() and by_file.exists():
        os.replace(by_file, target)
    return target if target.exists() else None


def _damaged_case(
    args: argparse.Namespace, error: Exception, unwritten: list[dict], channels: int | None
) -> tuple[dict | None, Exception]:
    """The case the failed run stopped at, and why: the one case whose input our reader's ``error`` names (a file,
    the DICOM folder or a file in it); after another error of the run (a bundle whose own reader met damaged voxels),
    the first of the first few unwritten cases that our reader refuses when it decodes them. ``(None, error)`` for a
    write error or a failure no input explains."""
    from monai_unet.io import ImageInputError, OutputWriteError

    if isinstance(error, OutputWriteError):
        return None, error
    if isinstance(error, ImageInputError):
        where = Path(error.path).resolve()
        matches = [
            case
            for case in unwritten
            if any(where == (source := Path(p).resolve()) or where.is_relative_to(source) for p in _images(case))
        ]
        return (matches[0], error) if len(matches) == 1 else (None, error)
    for case in unwritten[:_CASES_CHECKED_AFTER_A_FAILURE]:  # the run stopped at one of the first (loader prefetch)
        damaged = damaged_input([Path(p) for p in _images(case)], resample=args.resample, channels=channels)
        if damaged is not None:
            return case, damaged
    return None, error
