"""Reading speed: ``LoadImage(reader=SimpleITKReader())`` against ``LoadImage()`` with MONAI's default readers.

Cases (both sides return float32 MetaTensors, LoadImage's default ``dtype``, and are checked to agree):

- a 512×512×300 int16 CT-like ``.nii.gz`` written once into a temporary folder (MONAI picks NibabelReader:
  gzip in Python, then a float conversion; SimpleITK decompresses with its own zlib and keeps int16 until
  LoadImage converts);
- the real 20-slice JPEG 2000 CT series of ``../shared/data/totalsegmentator_examples/ct_dicom`` (MONAI picks
  PydicomReader), or the 5-slice excerpt in ``sample_data/`` where ``../shared`` is absent.

``--quick`` uses a 256×256×60 volume and fewer repeats.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from monai.transforms import LoadImage
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation, ornt_transform

from benchmarks.harness import Comparison, measure
from monai_unet.io import SimpleITKReader

__all__ = ["TITLE", "run"]

TITLE = "Image reading: SimpleITKReader vs MONAI LoadImage() default readers"

_ROOT = Path(__file__).resolve().parents[1]
_SHARED = Path(os.environ.get("MONAI_UNET_SHARED_DATA", _ROOT.parent / "shared" / "data"))


def _ct_like_volume(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Air (-1024 HU, as scanners clip it) around an elliptic body of noisy soft tissue with a bony core (int16)."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    body = (x / 0.8) ** 2 + (y / 0.6) ** 2 < 1
    bone = (x**2 + (y + 0.35) ** 2) < 0.01
    volume = np.full(shape, -1024, dtype=np.int16)
    volume[body] = 40
    volume[bone] = 700
    volume[body] += rng.normal(0, 20, (int(body.sum()), shape[2])).astype(np.int16)
    return volume


def _agreement(ours, baseline) -> str:
    """Largest voxel and affine difference after flipping the baseline to our axis order (no resampling)."""
    a, b = ours.numpy(), baseline.numpy()
    affine_a, affine_b = ours.affine.numpy(), baseline.affine.numpy()
    transform = ornt_transform(io_orientation(affine_b), io_orientation(affine_a))
    b = apply_orientation(b, transform)
    affine_b = affine_b @ inv_ornt_aff(transform, baseline.shape)
    return f"max |Δvoxel| {np.abs(a - b).max():g}, max |Δaffine| {np.abs(affine_a - affine_b).max():.1e} mm"


def run(quick: bool) -> list[Comparison]:
    repeats = 2 if quick else 5
    shape = (256, 256, 60) if quick else (512, 512, 300)
    ours_loader = LoadImage(reader=SimpleITKReader(), image_only=True)
    default_loader = LoadImage(image_only=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "ct.nii.gz")
        nib.save(nib.Nifti1Image(_ct_like_volume(shape), np.diag([-0.8, -0.8, 1.5, 1.0])), path)
        size_mb = Path(path).stat().st_size / 2**20
        ours = measure("SimpleITKReader", lambda: ours_loader(path), repeats=repeats)
        baseline = measure("LoadImage() (NibabelReader)", lambda: default_loader(path), repeats=repeats)
        extra = {"agreement": _agreement(ours_loader(path), default_loader(path)), "file": f"{size_mb:.0f} MB"}
        results.append(Comparison(f"NIfTI {'×'.join(map(str, shape))} int16 .nii.gz", ours, baseline, extra))
    shared_series = _SHARED / "totalsegmentator_examples" / "ct_dicom" / "series"
    series = shared_series if shared_series.is_dir() else _ROOT / "sample_data" / "totalsegmentator_ct_dicom" / "series"
    slices = len(list(series.iterdir()))
    ours = measure("SimpleITKReader", lambda: ours_loader(series), repeats=repeats)
    baseline = measure("LoadImage() (PydicomReader)", lambda: default_loader(series), repeats=repeats)
    extra = {"agreement": _agreement(ours_loader(series), default_loader(series)), "file": f"{slices} JPEG 2000 files"}
    results.append(Comparison(f"DICOM CT series 512×512×{slices}", ours, baseline, extra))
    return results
