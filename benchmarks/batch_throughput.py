"""Scans per minute of ``monai-unet segment -i`` with the shipped MRI bundle: one process against several.

    python -m benchmarks.batch_throughput [--cases 20] [--processes 1 2] [--output-dir DIR]

The cases are the BRATS sample subject (FLAIR + T1c, 240 × 240 × 155) linked ``--cases`` times under different
names. ``P`` processes run ``segment -i ... --num-parts P --part-id I`` side by side, each with ``cores / P`` torch
threads (``OMP_NUM_THREADS``), so the machine's cores are shared the same way in every setting; the wall-clock time
from the first start to the last exit includes every process's imports and network load. Each setting writes into a
fresh folder, and every case must be written exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import machine_description

ROOT = Path(__file__).resolve().parents[1]
SUBJECT = ROOT / "sample_data" / "brats2013" / "brats_2013_pat0004_1"
CHANNELS = ("Flair_subtrMeanDivStd.nii.gz", "T1c_subtrMeanDivStd.nii.gz")


def _cases(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        for channel, name in enumerate(CHANNELS):
            link = folder / f"case{i:03d}_{channel:04d}.nii.gz"
            if not link.exists():
                link.symlink_to(SUBJECT / name)


def _run(cases: Path, out: Path, processes: int, cores: int) -> float:
    command = [sys.executable, "-m", "monai_unet", "segment", "-i", str(cases), "-o", str(out)]
    command += ["--bundle", "brain_tumor_mri_segmentation", "--no-progress", "--num-parts", str(processes)]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // processes))}
    start = time.perf_counter()
    jobs = [
        subprocess.Popen([*command, "--part-id", str(i)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for i in range(processes)
    ]
    for job in jobs:
        _, stderr = job.communicate()
        if job.returncode != 0:
            raise SystemExit(f"segment failed ({job.returncode}): {stderr.decode()[-2000:]}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--output-dir", type=Path, default=ROOT / "outputs" / "batch_throughput")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    cases = args.output_dir / "cases"
    _cases(cases, args.cases)
    rows = []
    for processes in args.processes:
        out = args.output_dir / f"out_{processes}"
        if out.exists():
            for path in out.iterdir():
                path.unlink()
        seconds = _run(cases, out, processes, cores)
        written = sorted(p.name for p in out.iterdir())
        if len(written) != args.cases:
            raise SystemExit(f"{out}: {len(written)} outputs for {args.cases} cases")
        rows.append({"processes": processes, "seconds": round(seconds, 1), "scans_per_min": 60 * args.cases / seconds})
        print(f"{processes} process(es): {seconds:.1f} s, {rows[-1]['scans_per_min']:.2f} scans/min", flush=True)
    result = {"machine": machine_description(), "cases": args.cases, "cores": cores, "rows": rows}
    (args.output_dir / "result.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
