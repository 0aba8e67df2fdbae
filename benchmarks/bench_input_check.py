"""``monai-unet segment``'s check of its input before the bundle runs: the header read (0.15.0) against the full
decoding read it replaced (``SimpleITKReader.get_data``, which the bundle then repeated).

The check keeps the grid the output must land on and refuses what the headers show (an awkward DICOM series, a 4D
file for a 3D bundle, channels on different grids); the scan's voxels are decoded once, by the bundle. Each case
checks that both reads give the same grid. Inputs: a 512×512×300 int16 CT-like ``.nii.gz`` written once (as in
``bench_io``), the float32 BRATS FLAIR of ``sample_data/`` (read through nibabel), and the real JPEG 2000 CT series of
``../shared/data/totalsegmentator_examples/ct_dicom`` (the 5-slice excerpt in ``sample_data/`` where it is absent).
``--quick`` uses a 256×256×60 volume and fewer repeats.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from benchmarks.bench_io import _ct_like_volume
from benchmarks.harness import Comparison, compare
from monai_unet.io import SimpleITKReader
from monai_unet.io.grid import VoxelGrid

__all__ = ["TITLE", "run"]

TITLE = "segment's input check: headers only (ours, 0.15.0) vs the decoding read it replaced"

_ROOT = Path(__file__).resolve().parents[1]
_SHARED = Path(os.environ.get("MONAI_UNET_SHARED_DATA", _ROOT.parent / "shared" / "data"))


def _case(name: str, source: Path, repeats: int) -> Comparison:
    reader = SimpleITKReader()

    def header() -> VoxelGrid:
        return reader.read_header(reader.read(str(source))).grid

    def decoded() -> VoxelGrid:
        return VoxelGrid.from_meta(reader.get_data(reader.read(str(source)), contiguous=False)[1])

    same = "same grid" if not header().differences(decoded(), atol_mm=1e-9) else "GRIDS DIFFER"
    return compare(name, ("read_header", header), ("get_data", decoded), repeats=repeats, extra={"agreement": same})


def run(quick: bool) -> list[Comparison]:
    repeats = 2 if quick else 5
    shape = (256, 256, 60) if quick else (512, 512, 300)
    dicom = _SHARED / "totalsegmentator_examples" / "ct_dicom" / "series"
    if not dicom.is_dir():
        dicom = _ROOT / "sample_data" / "totalsegmentator_ct_dicom" / "series"
    flair = _ROOT / "sample_data" / "brats2013" / "brats_2013_pat0004_1" / "Flair_subtrMeanDivStd.nii.gz"
    with tempfile.TemporaryDirectory() as folder:
        ct = Path(folder) / "ct.nii.gz"
        nib.save(nib.Nifti1Image(_ct_like_volume(shape), np.diag([0.8, 0.8, 1.5, 1.0])), ct)
        return [
            _case(f"CT .nii.gz {'x'.join(map(str, shape))} int16", ct, repeats),
            _case("BRATS FLAIR .nii.gz float32 (nibabel)", flair, repeats),
            _case(f"CT DICOM series, JPEG 2000 ({len(list(dicom.iterdir()))} files)", dicom, repeats),
        ]
