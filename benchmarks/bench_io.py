"""Reading speed: our loaders against ``LoadImage()`` with MONAI's default readers, interleaved in one process.

Ours, each against the baseline that gives the same output type:

- ``LoadImage(reader=SimpleITKReader())``: the reader keeps the stored int16 and ``LoadImage`` converts;
- ``LoadImage(reader=SimpleITKReader(dtype=np.float32))``: the reader converts while it reorders the voxels, so
  ``LoadImage``'s conversion is a no-op;
- ``LoadScan()``: our transform, the same MetaTensor without MONAI's reordering copy (a Fortran-ordered view);
- ``LoadScan(dtype=None)``: the same, int16 kept, against ``LoadImage(dtype=None)``;
- ``LoadScan()`` with libdeflate disabled (``sitk.ReadImage`` inflates), the figure without the optional package;
- a preprocessing chain (``EnsureChannelFirstd``, ``Orientationd("RAS")``, ``CTWindowd``) after ``LoadScand``, and
  after ``LoadImaged(reader=SimpleITKReader(dtype=np.float32))``, against the chain after ``LoadImaged()``: it shows
  where the reordering copy that ``LoadScan`` saves goes (the first transform that makes its input contiguous).

Inputs: a 512×512×300 int16 CT-like ``.nii.gz`` written once into a temporary folder (MONAI picks NibabelReader:
gzip in Python, then a float conversion), and the real 20-slice JPEG 2000 CT series of
``../shared/data/totalsegmentator_examples/ct_dicom`` (MONAI picks PydicomReader), or the 5-slice excerpt in
``sample_data/`` where ``../shared`` is absent. Every case checks that both sides agree (voxels and affine).

``--quick`` uses a 256×256×60 volume and fewer repeats.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from monai.transforms import Compose, EnsureChannelFirstd, LoadImage, LoadImaged, Orientationd
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation, ornt_transform

from benchmarks.harness import Comparison, compare
from monai_unet.io import LoadScan, LoadScand, SimpleITKReader
from monai_unet.io import integrity as integrity_module
from monai_unet.transforms import CTWindowd

__all__ = ["TITLE", "run"]

TITLE = "Image reading: SimpleITKReader and LoadScan vs MONAI LoadImage() default readers"

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


def _without_libdeflate(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` run with the optional libdeflate path switched off (``sitk.ReadImage`` inflates the file)."""

    def run_plain() -> Any:
        saved = integrity_module._gzip_decompress
        integrity_module._gzip_decompress = None
        try:
            return fn()
        finally:
            integrity_module._gzip_decompress = saved

    return run_plain


def _case(case: str, ours: tuple[str, Callable], baseline: tuple[str, Callable], repeats: int, **extra) -> Comparison:
    agreement = _agreement(_image(ours[1]()), _image(baseline[1]()))
    return compare(case, ours, baseline, repeats=repeats, extra={"agreement": agreement, **extra})


def _image(result):
    """The MetaTensor of a loader's or a dictionary pipeline's result, channel axis dropped."""
    image = result["image"] if isinstance(result, dict) else result
    return image[0] if image.ndim == 4 else image


def run(quick: bool) -> list[Comparison]:
    repeats = 2 if quick else 5
    shape = (256, 256, 60) if quick else (512, 512, 300)
    default = LoadImage(image_only=True)
    default_native = LoadImage(image_only=True, dtype=None)
    reader_native = LoadImage(reader=SimpleITKReader(), image_only=True)
    reader_float = LoadImage(reader=SimpleITKReader(dtype=np.float32), image_only=True)
    scan, scan_native = LoadScan(), LoadScan(dtype=None)
    chain = [EnsureChannelFirstd("image"), Orientationd("image", axcodes="RAS"), CTWindowd("image", preset="abdomen")]
    scan_chain = Compose([LoadScand("image"), *chain])
    default_chain = Compose([LoadImaged("image"), *chain])
    reader_chain = Compose([LoadImaged("image", reader=SimpleITKReader(dtype=np.float32)), *chain])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "ct.nii.gz")
        nib.save(nib.Nifti1Image(_ct_like_volume(shape), np.diag([-0.8, -0.8, 1.5, 1.0])), path)
        file = f"{Path(path).stat().st_size / 2**20:.0f} MB"
        name = f"NIfTI {'×'.join(map(str, shape))} int16 .nii.gz"
        baseline = ("LoadImage() (NibabelReader)", lambda: default(path))
        cases = [
            (f"{name}: LoadImage(reader=SimpleITKReader())", ("ours", lambda: reader_native(path)), baseline),
            (
                f"{name}: LoadImage(reader=SimpleITKReader(dtype=float32))",
                ("ours", lambda: reader_float(path)),
                baseline,
            ),
            (f"{name}: LoadScan()", ("ours", lambda: scan(path)), baseline),
            (
                f"{name}: LoadScan(dtype=None), int16",
                ("ours", lambda: scan_native(path)),
                ("LoadImage(dtype=None) (NibabelReader)", lambda: default_native(path)),
            ),
            (f"{name}: LoadScan() without libdeflate", ("ours", _without_libdeflate(lambda: scan(path))), baseline),
            (
                f"{name}: LoadScand + EnsureChannelFirstd, Orientationd(RAS), CTWindowd",
                ("ours", lambda: scan_chain({"image": path})),
                ("LoadImaged() + the same", lambda: default_chain({"image": path})),
            ),
            (
                f"{name}: LoadImaged(reader=SimpleITKReader(dtype=float32)) + the same",
                ("ours", lambda: reader_chain({"image": path})),
                ("LoadImaged() + the same", lambda: default_chain({"image": path})),
            ),
        ]
        results += [_case(case, ours, base, repeats, file=file) for case, ours, base in cases]
    shared_series = _SHARED / "totalsegmentator_examples" / "ct_dicom" / "series"
    series = shared_series if shared_series.is_dir() else _ROOT / "sample_data" / "totalsegmentator_ct_dicom" / "series"
    file = f"{len(list(series.iterdir()))} JPEG 2000 files"
    name = f"DICOM CT series 512×512×{len(list(series.iterdir()))}"
    baseline = ("LoadImage() (PydicomReader)", lambda: default(series))
    results.append(
        _case(
            f"{name}: LoadImage(reader=SimpleITKReader())",
            ("ours", lambda: reader_native(series)),
            baseline,
            repeats,
            file=file,
        )
    )
    results.append(_case(f"{name}: LoadScan()", ("ours", lambda: scan(series)), baseline, repeats, file=file))
    return results
