"""A standing guard: damaged variants of real NIfTI, NRRD, MetaImage, PNG and DICOM files.

Each base file is written by its own library (nibabel, SimpleITK, PIL, pydicom); each variant cuts it short at
several offsets, flips one bit in its header or its voxel data, or forges its size fields. For every variant the
reader must either refuse it with an ``ImageInputError`` that names the file, or read it correctly:

- formats that check their content (gzip-compressed NIfTI and NRRD: CRC-32 and length; compressed MetaImage:
  Adler-32 and length; PNG: chunk CRCs) must never read with altered voxels;
- raw formats (``.nii``, raw NRRD, MetaImage, DICOM pixel data) cannot tell a flipped data bit from a real value:
  such a read may differ from the original only in the one flipped voxel, with the original shape;
- nothing else may escape (no ``RuntimeError`` from a library, no crash), and nothing allocates more than a small
  multiple of the files' real size (a forged size is refused before allocating).

``docs/reliability.md`` lists the variants and what the reader does with each.
"""

from __future__ import annotations

import gzip
import resource
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from cli_in_process import run_in_process
from PIL import Image
from reading import read_checking_header
from test_io_dicom import write_series, z_positions

from monai_unet.io import ImageInputError

VOLUME = np.random.default_rng(7).integers(0, 3000, size=(20, 18, 6)).astype(np.int16)  # (x, y, z)
PICTURE = np.random.default_rng(8).integers(0, 255, size=(24, 32)).astype(np.uint8)  # rows, columns
CHECKED = {"nii.gz", "nrrd.gz", "mha.z", "png"}  # formats whose content is checksummed


def _bases(root: Path) -> dict[str, tuple[Path, int]]:
    """name → (file or DICOM folder, header bytes): each written by its own library."""
    root.mkdir(parents=True, exist_ok=True)
    bases = {}
    for name in ("nii", "nii.gz"):
        path = root / f"base.{name}"
        nib.save(nib.Nifti1Image(VOLUME, np.diag([0.8, 0.8, 2.5, 1.0])), path)
        bases[name] = (path, 352)
    image = sitk.GetImageFromArray(VOLUME.transpose(2, 1, 0).copy())
    image.SetSpacing((0.8, 0.8, 2.5))
    for name, suffix, compress in (
        ("nrrd.gz", ".nrrd", True),
        ("nrrd", ".nrrd", False),
        ("mha", ".mha", False),
        ("mha.z", ".mha", True),  # CompressedData = True: a zlib stream with its Adler-32
    ):
        path = root / f"base_{name.replace('.', '_')}{suffix}"
        sitk.WriteImage(image, str(path), useCompression=compress)
        bases[name] = (path, path.read_bytes().index(b"\n\n") + 2 if suffix == ".nrrd" else _mha_header(path))
    Image.fromarray(PICTURE).save(root / "base.png")
    bases["png"] = (root / "base.png", 33)
    write_series(root / "dicom", z_positions([0, 2, 4, 6]))
    bases["dicom"] = (root / "dicom", 0)
    return bases


def _mha_header(path: Path) -> int:
    data = path.read_bytes()
    end = data.index(b"ElementDataFile")
    return data.index(b"\n", end) + 1


def _read(path: Path) -> np.ndarray:
    return np.asarray(read_checking_header(path)[0])


def _variants(name: str, path: Path, header: int) -> list[tuple[str, bytes]]:
    """(description, damaged bytes) for one base file."""
    data = path.read_bytes()
    raw = gzip.decompress(data) if name == "nii.gz" else data
    out = [(f"cut at {f:.0%}", data[: int(len(data) * f)]) for f in (0.1, 0.5, 0.9)]
    out.append(("last byte missing", data[:-1]))
    for label, offsets in (("header", (4, header // 2, header - 3)), ("data", (len(data) // 2, len(data) - 9))):
        for offset in offsets:
            flipped = bytearray(data)
            flipped[offset] ^= 0x10
            out.append((f"bit flip in the {label} at byte {offset}", bytes(flipped)))
    if name in ("nii", "nii.gz"):  # dim[1] (bytes 42-43) × 1000: 20 000 voxels along x from the same file
        forged = bytearray(raw)
        forged[42:44] = np.int16(20000).tobytes()
        out.append(
            ("forged size (dim[1] = 20000)", gzip.compress(bytes(forged)) if name == "nii.gz" else bytes(forged))
        )
    elif name in ("nrrd", "nrrd.gz"):
        out.append(("forged size (sizes 2000 2000 2000)", data.replace(b"sizes: 20 18 6", b"sizes: 2000 2000 2000")))
    elif name in ("mha", "mha.z"):
        out.append(
            ("forged size (DimSize 2000 2000 2000)", data.replace(b"DimSize = 20 18 6", b"DimSize = 2000 2000 2000"))
        )
    return out


def _dicom_variants(folder: Path) -> list[tuple[str, Path, bytes]]:
    """(description, slice file, damaged bytes) for a DICOM series: the first and a middle slice, cut or flipped."""
    files = sorted(folder.iterdir())
    out = []
    for target in (files[0], files[len(files) // 2]):
        data = target.read_bytes()
        out += [(f"{target.name} cut at {f:.0%}", target, data[: int(len(data) * f)]) for f in (0.1, 0.5, 0.9)]
        flipped = bytearray(data)
        flipped[len(data) - 99] ^= 0x10
        out.append((f"{target.name} bit flip in the pixel data", target, bytes(flipped)))
    return out


def outcome(name: str, damaged: Path, original: np.ndarray, named: Path) -> str:
    """What the reader did: ``refused`` (naming the file), ``read correctly``, or ``read, one voxel differs``;
    fails the test for anything else."""
    try:
        array = _read(damaged)
    except ImageInputError as error:
        assert str(named) in str(error), f"{name}: the error does not name {named}: {error}"
        return "refused"
    if array.shape == original.shape and np.array_equal(array, original):
        return "read correctly"
    assert name not in CHECKED, f"{name}: read with altered voxels from a checksummed format"
    assert array.shape == original.shape, f"{name}: read with shape {array.shape}, not {original.shape}"
    assert np.count_nonzero(array != original) <= 1, f"{name}: more than the flipped voxel differs"
    return "read, one voxel differs (raw data has no checksum)"


def fuzz_table(root: Path) -> list[tuple[str, str, str, Path]]:
    """Run every variant; returns (format, damage, outcome, damaged file or folder) rows."""
    rows = []
    for name, (base, header) in _bases(root / "bases").items():
        original = _read(base)
        if name == "dicom":
            for description, target, content in _dicom_variants(base):
                folder = root / "variants" / f"dicom_{len(rows)}"
                shutil.copytree(base, folder)
                (folder / target.name).write_bytes(content)
                rows.append((name, description, outcome(name, folder, original, folder), folder))
            continue
        for description, content in _variants(name, base, header):
            damaged = root / "variants" / f"{len(rows)}_{base.name}"
            damaged.parent.mkdir(parents=True, exist_ok=True)
            damaged.write_bytes(content)
            if base.suffix == ".mhd":
                shutil.copy(base.with_suffix(".raw"), damaged.with_suffix(".raw"))
            rows.append((name, description, outcome(name, damaged, original, damaged), damaged))
    return rows


def test_damaged_files_are_refused_naming_them_or_read_correctly(tmp_path, capsys):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = fuzz_table(tmp_path)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 300, f"reading the damaged files grew the process by {grown_mib:.0f} MiB"
    assert len(rows) >= 60
    refused = {(fmt, damage) for fmt, damage, result, _ in rows if result == "refused"}
    for fmt in ("nii", "nii.gz", "nrrd", "nrrd.gz", "mha", "mha.z", "png"):  # a file cut short is never complete
        assert {(fmt, "cut at 50%"), (fmt, "cut at 90%")} <= refused, fmt
    for fmt in ("nii", "nii.gz", "nrrd", "nrrd.gz", "mha", "mha.z"):  # nor one missing its last (trailer) byte
        assert (fmt, "last byte missing") in refused, fmt
    assert all(result == "refused" for fmt, damage, result, _ in rows if "forged" in damage)
    assert {result for fmt, damage, result, _ in rows if fmt == "mha.z" and "data" in damage} == {"refused"}
    assert any("cut" in damage and result == "refused" for fmt, damage, result, _ in rows if fmt == "dicom")

    # the command line says the same: `monai-unet info` on every variant exits 2 naming exactly the refused ones
    answer = run_in_process(capsys, "info", *(path for *_, path in rows))
    assert answer.returncode == 2, answer.stderr[-2000:]
    named = answer.stderr.strip().splitlines()[-1].split("would be refused: ")[1].split(", ")
    assert sorted(named) == sorted(str(path) for *_, result, path in rows if result == "refused")


if __name__ == "__main__":  # print the table for docs/reliability.md
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        print("| format | damage | outcome |\n|---|---|---|")
        for row in fuzz_table(Path(folder)):
            print("| " + " | ".join(row[:3]) + " |")
