"""``VoxelGrid``: the one geometry type; the reader's meta schema, grids read from headers alone, differences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from monai.transforms import LoadImage

from monai_unet.io import SimpleITKReader
from monai_unet.io.grid import VoxelGrid


def _oblique_image(path: Path, size=(9, 7, 5)) -> sitk.Image:
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))
    image = sitk.GetImageFromArray(np.arange(np.prod(size), dtype=np.int16).reshape(size[::-1]))
    image.SetSpacing((0.7, 0.9, 2.5))
    image.SetOrigin((-12.5, 30.25, 4.0))
    image.SetDirection(tuple(q.ravel()))
    sitk.WriteImage(image, str(path))
    return image


def test_the_reader_meta_is_the_grid_schema(tmp_path: Path) -> None:
    """The reader records exactly ``to_meta``'s keys; ``from_meta`` gives back the file's grid and affine."""
    image = _oblique_image(tmp_path / "ct.nii.gz")
    loaded = LoadImage(reader=SimpleITKReader(), image_only=True)(str(tmp_path / "ct.nii.gz"))
    grid = VoxelGrid.from_meta(loaded.meta)
    assert grid.same_as(VoxelGrid.from_sitk(image), atol_mm=1e-4)
    np.testing.assert_allclose(grid.ras_affine(), loaded.affine.numpy(), atol=1e-4)
    again = VoxelGrid.from_meta(grid.to_meta())
    assert again.same_as(grid, atol_mm=0) and again.size == (9, 7, 5)


@pytest.mark.parametrize("name", ["ct.nii.gz", "ct.nrrd", "ct.mha"])
def test_from_header_reads_the_grid_without_the_voxels(tmp_path: Path, name: str) -> None:
    image = _oblique_image(tmp_path / name)
    assert VoxelGrid.from_header(tmp_path / name).same_as(VoxelGrid.from_sitk(image), atol_mm=1e-4)


def test_from_header_keeps_the_spatial_axes_of_a_probability_file(tmp_path: Path) -> None:
    """A 4D file (x, y, z, class): with ``ndim=3`` only the spatial grid is compared."""
    image = sitk.JoinSeries([sitk.Image(6, 5, 4, sitk.sitkFloat32)] * 3)
    image.SetSpacing((0.5, 0.6, 2.0, 1.0))
    sitk.WriteImage(image, str(tmp_path / "prob.nii.gz"))
    grid = VoxelGrid.from_header(tmp_path / "prob.nii.gz", ndim=3)
    assert grid.size == (6, 5, 4) and grid.spacing == pytest.approx((0.5, 0.6, 2.0))


def test_differences_name_each_quantity_beyond_the_tolerance(tmp_path: Path) -> None:
    grid = VoxelGrid.from_sitk(_oblique_image(tmp_path / "ct.nii.gz"))
    assert grid.differences(grid) == []
    shifted = VoxelGrid(grid.size, grid.spacing, (grid.origin[0] + 0.01, *grid.origin[1:]), grid.direction)
    assert [what for what, _, _ in grid.differences(shifted)] == ["origin (mm)"]
    assert shifted.differences(grid, atol_mm=0.02) == []
    cropped = VoxelGrid((9, 7, 4), (0.7, 0.9, 2.6), grid.origin, grid.direction)
    assert [what for what, _, _ in grid.differences(cropped)] == ["size", "spacing (mm)"]
