"""Writing speed: ``write_segmentation`` against MONAI's ``SaveImage`` (NIfTI) and pynrrd (``.seg.nrrd``).

Cases, on a 512×512×300 label map of 12 blob-shaped organs (``--quick``: 256×256×60) on an oblique 0.8 × 0.8 × 1.5
mm grid, both sides given the same float32 channel-first ``MetaTensor`` a post-``Invertd`` prediction is:

- ``.nii.gz``: ours (checks, uint8, SimpleITK writer with its zlib) against ``SaveImage(output_dtype=uint8,
  resample=False)`` (MONAI picks NibabelWriter without ITK; gzip in Python). Both files are read back and checked
  to hold the same voxels and affine.
- ``.seg.nrrd``: ours (checks, extents by one ``find_objects`` pass, Slicer header, gzip) against ``nrrd.write``
  of the same array with the same custom header fields precomputed (the baseline does no checks and computes no
  extents: it measures the file writing alone).

Both sides write into the same temporary folder; the output files are replaced at each run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import SaveImage

from benchmarks.harness import Comparison, compare
from monai_unet.io import write_segmentation
from monai_unet.io.grid import VoxelGrid
from monai_unet.io.seg_nrrd import seg_nrrd_header
from monai_unet.io.segments import segment_table
from monai_unet.io.writers import label_array

__all__ = ["TITLE", "run"]

TITLE = "Segmentation writing: write_segmentation vs MONAI SaveImage (NIfTI) and pynrrd (.seg.nrrd)"


def _prediction(shape: tuple[int, int, int], seed: int = 0) -> MetaTensor:
    """12 ellipsoidal "organs" (labels 1..12) in a float32 (1, X, Y, Z) MetaTensor on an oblique grid."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*(np.linspace(-1, 1, n, dtype=np.float32) for n in shape), indexing="ij")
    labels = np.zeros(shape, dtype=np.float32)
    for value in range(1, 13):
        centre, radii = rng.uniform(-0.6, 0.6, 3), rng.uniform(0.08, 0.25, 3)
        inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii, strict=True)) < 1
        labels[inside] = value
    angle = np.deg2rad(12.0)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine[:3, :3] *= np.array([0.8, 0.8, 1.5])
    affine[:3, 3] = (-200.0, -180.0, -400.0)
    return MetaTensor(
        torch.from_numpy(labels[None]), affine=torch.from_numpy(affine), meta={"filename_or_obj": "case.nii.gz"}
    )


def _nifti_case(prediction: MetaTensor, folder: Path, repeats: int) -> Comparison:
    ours_path = folder / "ours.nii.gz"
    saver = SaveImage(
        output_dir=folder / "monai",
        output_postfix="",
        output_ext=".nii.gz",
        output_dtype=np.uint8,
        resample=False,
        separate_folder=False,
        print_log=False,
    )
    comparison = compare(
        "label map → .nii.gz",
        ("write_segmentation", lambda: write_segmentation(prediction, None, ours_path)),
        ("MONAI SaveImage (NibabelWriter)", lambda: saver(prediction)),
        repeats=repeats,
    )
    ours, theirs = nib.load(ours_path), nib.load(next((folder / "monai").glob("*.nii.gz")))
    same = np.array_equal(np.asarray(ours.dataobj), np.asarray(theirs.dataobj)) and np.allclose(
        ours.affine, theirs.affine, atol=1e-4
    )
    comparison.extra.update(
        {
            "same voxels and affine": "yes" if same else "NO",
            "ours MB": f"{ours_path.stat().st_size / 1e6:.2f}",
            "baseline MB": f"{next((folder / 'monai').glob('*.nii.gz')).stat().st_size / 1e6:.2f}",
        }
    )
    return comparison


def _nrrd_case(prediction: MetaTensor, folder: Path, repeats: int) -> Comparison:
    grid = VoxelGrid.from_reference(prediction)
    labels = label_array(prediction, grid, folder)
    header_text = seg_nrrd_header(labels, grid, segment_table(labels))
    custom = dict(line.split(":=", 1) for line in header_text.splitlines() if ":=" in line)
    header = {
        "space": "left-posterior-superior",
        "space directions": (grid.direction * np.asarray(grid.spacing)).T,
        "space origin": np.asarray(grid.origin),
        "kinds": ["domain"] * 3,
        "encoding": "gzip",
        **custom,
    }
    ours_path, theirs_path = folder / "ours.seg.nrrd", folder / "pynrrd.seg.nrrd"
    comparison = compare(
        "label map → .seg.nrrd",
        ("write_segmentation", lambda: write_segmentation(prediction, None, ours_path)),
        ("pynrrd nrrd.write (header given)", lambda: nrrd.write(str(theirs_path), labels, header)),
        repeats=repeats,
    )
    (ours, ours_header), (theirs, theirs_header) = nrrd.read(str(ours_path)), nrrd.read(str(theirs_path))
    same = (
        np.array_equal(ours, theirs)
        and np.allclose(ours_header["space directions"], theirs_header["space directions"], atol=1e-9)
        and np.allclose(ours_header["space origin"], theirs_header["space origin"], atol=1e-9)
    )
    comparison.extra["same voxels and affine"] = "yes" if same else "NO"
    return comparison


def run(quick: bool) -> list[Comparison]:
    shape = (256, 256, 60) if quick else (512, 512, 300)
    repeats = 2 if quick else 5
    prediction = _prediction(shape)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = [_nifti_case(prediction, folder, repeats), _nrrd_case(prediction, folder, repeats)]
    for comparison in results:
        comparison.case = f"{comparison.case} ({'×'.join(map(str, shape))}, 12 labels)"
    return results
