"""Tiny labelled datasets written as real files (PNG, JPEG, NIfTI) for the planner's tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image


def _blob_label(shape: tuple[int, ...], rng: np.random.Generator, classes: int) -> np.ndarray:
    """Concentric blobs: class c inside radius r_c around a random centre (so every class is present)."""
    grid = np.indices(shape).astype(float)
    centre = [rng.uniform(0.35, 0.65) * s for s in shape]
    radius = np.sqrt(sum(((g - c) / (0.3 * s)) ** 2 for g, c, s in zip(grid, centre, shape, strict=True)))
    label = np.zeros(shape, dtype=np.uint8)
    for c in range(1, classes):
        label[radius < 1.0 - 0.3 * (c - 1)] = c
    return label


def _image_from(label: np.ndarray, rng: np.random.Generator, scale: float = 60.0, offset: float = 40.0) -> np.ndarray:
    return offset + scale * label + rng.normal(0, 8, label.shape)


def _write_em_pngs(root: Path, cases: int, make_label: Callable[[], np.ndarray], rng: np.random.Generator) -> Path:
    """Grey PNGs of ``cases`` labels from ``make_label`` (1 = membrane), stored as {0: "membrane", 255:
    "background"} (the class named background is 255, as in ISBI 2012), and their dataset.json."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    training = []
    for i in range(cases):
        label = make_label()
        image = np.clip(_image_from(label, rng), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"em{i:02d}.png")
        Image.fromarray(np.where(label == 1, 0, 255).astype(np.uint8)).save(root / "labels" / f"em{i:02d}.png")
        training.append({"image": f"images/em{i:02d}.png", "label": f"labels/em{i:02d}.png"})
    data = {
        "name": "tiny membranes",
        "modality": {"0": "EM"},
        "labels": {"0": "membrane", "255": "background"},
        "licence": "CC0 (synthetic test data)",
        "training": training,
    }
    (root / "dataset.json").write_text(json.dumps(data))
    return root / "dataset.json"


def write_png_dataset(root: Path, cases: int = 6, size: tuple[int, int] = (48, 40), seed: int = 0) -> Path:
    """2D grey PNGs of blobs with labels {0: "membrane", 255: "background"} (the class named background is 255)."""
    rng = np.random.default_rng(seed)
    return _write_em_pngs(root, cases, lambda: _blob_label(size, rng, 2), rng)


def write_membrane_dataset(root: Path, cases: int = 4, size: tuple[int, int] = (64, 64), seed: int = 0) -> Path:
    """2D grey PNGs of cells walled by membranes 2 pixels thick (a thin class), labels as :func:`write_png_dataset`."""
    rng = np.random.default_rng(seed)

    def walled_cells() -> np.ndarray:
        label = np.zeros(size, dtype=np.uint8)
        for axis, length in enumerate(size):
            walls = np.arange(int(rng.integers(3, 9)), length - 1, int(rng.integers(11, 16)))
            index: list = [slice(None), slice(None)]
            index[axis] = np.concatenate([walls, walls + 1])
            label[tuple(index)] = 1
        return label

    return _write_em_pngs(root, cases, walled_cells, rng)


def write_rgb_dataset(root: Path, cases: int = 6, seed: int = 0) -> Path:
    """2D RGB JPEGs of mixed sizes with binary PNG labels (0/1), one modality entry for three channels."""
    rng = np.random.default_rng(seed)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    training = []
    for i in range(cases):
        size = (40 + 8 * (i % 3), 48 + 4 * (i % 2))
        label = _blob_label(size, rng, 2)
        grey = _image_from(label, rng, 90.0, 60.0)
        rgb = np.clip(np.stack([grey, 0.7 * grey, 0.4 * grey + 30], axis=-1), 0, 255).astype(np.uint8)
        Image.fromarray(rgb).save(root / "imagesTr" / f"{i:03d}.jpg", quality=95)
        Image.fromarray(label).save(root / "labelsTr" / f"{i:03d}.png")
        training.append({"image": f"imagesTr/{i:03d}.jpg", "label": f"labelsTr/{i:03d}.png"})
    data = {
        "name": "tiny polyps",
        "modality": {"0": "colonoscopy RGB"},
        "labels": {"0": "background", "1": "polyp"},
        "training": training,
    }
    (root / "dataset.json").write_text(json.dumps(data))
    return root / "dataset.json"


def _affine(spacing: tuple[float, float, float]) -> np.ndarray:
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = [-10.0, 5.0, 2.0]
    return affine


def write_nifti_dataset(
    root: Path, cases: int = 5, shape: tuple[int, int, int] = (24, 20, 16), classes: int = 3, seed: int = 0
) -> Path:
    """3D single-channel NIfTI, multi-class labels, in a dataset.json with a 'test' list."""
    rng = np.random.default_rng(seed)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    (root / "imagesTs").mkdir()
    training = []
    for i in range(cases):
        label = _blob_label(shape, rng, classes)
        image = _image_from(label, rng).astype(np.float32)
        nib.save(nib.Nifti1Image(image, _affine((1.0, 1.0, 1.5))), root / "imagesTr" / f"case{i}.nii.gz")
        nib.save(nib.Nifti1Image(label, _affine((1.0, 1.0, 1.5))), root / "labelsTr" / f"case{i}.nii.gz")
        training.append({"image": f"imagesTr/case{i}.nii.gz", "label": f"labelsTr/case{i}.nii.gz"})
    label = _blob_label(shape, rng, classes)
    nib.save(
        nib.Nifti1Image(_image_from(label, rng).astype(np.float32), _affine((1.0, 1.0, 1.5))),
        root / "imagesTs" / "new.nii.gz",
    )
    data = {
        "name": "tiny organs",
        "modality": {"0": "MR"},
        "labels": {"0": "background", "1": "outer", "2": "inner"}
        if classes == 3
        else {"0": "background", "1": "organ"},
        "training": training,
        "test": [{"image": "imagesTs/new.nii.gz"}],
    }
    (root / "dataset.json").write_text(json.dumps(data))
    return root / "dataset.json"


def write_msd_folder(root: Path, cases: int = 4, shape: tuple[int, int, int] = (32, 28, 6), seed: int = 0) -> Path:
    """3D two-channel anisotropic NIfTI (1 × 1 × 6 mm) in the MSD/nnU-Net folder layout, no dataset.json labels
    beyond a minimal one."""
    rng = np.random.default_rng(seed)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for i in range(cases):
        label = _blob_label(shape, rng, 2)
        for channel in range(2):
            image = _image_from(label, rng, 50.0 + 20 * channel).astype(np.float32)
            nib.save(
                nib.Nifti1Image(image, _affine((1.0, 1.0, 6.0))), root / "imagesTr" / f"pat{i}_{channel:04d}.nii.gz"
            )
        nib.save(nib.Nifti1Image(label, _affine((1.0, 1.0, 6.0))), root / "labelsTr" / f"pat{i}.nii.gz")
    data = {
        "name": "tiny two-channel",
        "modality": {"0": "T1", "1": "T2"},
        "labels": {"0": "background", "1": "lesion"},
    }
    (root / "dataset.json").write_text(json.dumps(data))
    return root


def write_sparse_dataset(root: Path, cases: int = 5, annotated_every: int = 3, seed: int = 0) -> Path:
    """:func:`write_nifti_dataset` annotated sparsely, as the 3D U-Net's training data: only every
    ``annotated_every``-th slice along the last axis keeps its labels, the others hold the ``ignore`` value 3."""
    source = write_nifti_dataset(root, cases=cases, seed=seed)
    data = json.loads(source.read_text())
    for item in data["training"]:
        path = root / item["label"]
        label = np.asarray(nib.load(path).dataobj).copy()
        label[..., np.arange(label.shape[-1]) % annotated_every != 0] = 3
        nib.save(nib.Nifti1Image(label, nib.load(path).affine), path)
    data["labels"] = {**data["labels"], "3": "ignore"}
    source.write_text(json.dumps(data))
    return source
