"""The reader's speed paths give exactly what the plain SimpleITK path gives: voxels taken from the verified inflated
bytes of an integer ``.nii.gz`` (and its fallbacks), the ``dtype`` option, and the reordering helpers."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from monai.transforms import LoadImage

from monai_unet.io import SimpleITKReader, read_image_file
from monai_unet.io import image_file as image_file_module
from monai_unet.io import integrity as integrity_module
from monai_unet.io.axes import reversed_axes_contiguous, reversed_axes_view


def oblique_affine() -> np.ndarray:
    c, s = np.cos(np.radians(25)), np.sin(np.radians(25))
    affine = np.eye(4)
    affine[:3, :3] = np.array([[-c, 0, s], [0, -1.0, 0], [-s, 0, -c]]) @ np.diag([0.6, 0.9, 3.0])
    affine[:3, 3] = [-12.5, 40.0, 81.0]
    return affine


def read_both(path, monkeypatch, **options):
    """``read_image_file`` through the inflated-bytes path, and with that path refused (``sitk.ReadImage``), plus
    whether the first read took it."""
    calls = []
    original = image_file_module._volume_from_inflated

    def spy(*args):
        volume = original(*args)
        calls.append(volume is not None)
        return volume

    monkeypatch.setattr(image_file_module, "_volume_from_inflated", spy)
    fast = read_image_file(path, **options)
    monkeypatch.setattr(image_file_module, "_volume_from_inflated", lambda *args: None)
    plain = read_image_file(path, **options)
    return fast, plain, calls[0]


def assert_same_volume(a, b) -> None:
    assert a.array.dtype == b.array.dtype and a.array.shape == b.array.shape
    np.testing.assert_array_equal(a.array, b.array)
    for field in ("origin", "spacing", "direction"):
        np.testing.assert_array_equal(getattr(a.grid, field), getattr(b.grid, field), err_msg=field)
    assert a.meta == b.meta


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.uint16, np.int32])
def test_libdeflate_path_equals_simpleitk(tmp_path, monkeypatch, dtype):
    data = np.random.default_rng(0).integers(0, 120, (13, 9, 7)).astype(dtype)
    path = tmp_path / "img.nii.gz"
    nib.save(nib.Nifti1Image(data, oblique_affine()), path)
    fast, plain, used = read_both(path, monkeypatch)
    assert used, "the inflated-bytes path should serve an integer 3D .nii.gz"
    assert_same_volume(fast, plain)
    np.testing.assert_array_equal(fast.array, data)
    assert fast.array.flags.c_contiguous and fast.meta["source_dtype"] == np.dtype(dtype).name


def test_header_extension_moves_the_voxels(tmp_path, monkeypatch):
    data = np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7)
    image = nib.Nifti1Image(data, oblique_affine())
    image.header.extensions.append(nib.nifti1.Nifti1Extension("comment", b"a comment that shifts vox_offset"))
    nib.save(image, tmp_path / "ext.nii.gz")
    fast, plain, used = read_both(tmp_path / "ext.nii.gz", monkeypatch)
    assert used and nib.load(tmp_path / "ext.nii.gz").dataobj.offset > 352
    assert_same_volume(fast, plain)
    np.testing.assert_array_equal(fast.array, data)


def test_rescaled_and_big_endian_files_go_through_simpleitk(tmp_path, monkeypatch):
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    scaled = nib.Nifti1Image(data, oblique_affine())
    scaled.header.set_slope_inter(0.5, -1024.0)
    nib.save(scaled, tmp_path / "scaled.nii.gz")
    fast, plain, used = read_both(tmp_path / "scaled.nii.gz", monkeypatch)
    assert not used and fast.array.dtype == np.float32  # ITK applies scl_slope/scl_inter
    assert_same_volume(fast, plain)
    np.testing.assert_allclose(fast.array, data * 0.5 - 1024.0)
    monkeypatch.undo()
    header = nib.Nifti1Header(endianness=">")
    header.set_data_dtype(">i2")
    big = nib.Nifti1Image(data.astype(">i2"), oblique_affine(), header)
    nib.save(big, tmp_path / "big.nii.gz")
    assert nib.load(tmp_path / "big.nii.gz").get_data_dtype() == np.dtype(">i2")
    fast, plain, used = read_both(tmp_path / "big.nii.gz", monkeypatch)
    assert not used
    assert_same_volume(fast, plain)
    np.testing.assert_array_equal(fast.array, data)


@pytest.mark.parametrize("source", [".nii.gz", ".nrrd", "float.nii.gz"])
def test_dtype_option_converts_in_the_reordering_pass(tmp_path, source):
    data = np.random.default_rng(1).integers(-1000, 1000, (11, 8, 6)).astype(np.int16)
    path = tmp_path / f"img{source}"
    if source == ".nrrd":
        sitk.WriteImage(sitk.GetImageFromArray(data.T.copy()), str(path))
    else:
        nib.save(nib.Nifti1Image(data.astype(np.float64) if "float" in source else data, np.eye(4)), path)
    reader = SimpleITKReader(dtype=np.float32)
    array, meta = reader.get_data(reader.read(path))
    assert array.dtype == np.float32 and array.flags.c_contiguous
    np.testing.assert_array_equal(array, data)
    assert meta["source_dtype"] == ("float64" if "float" in source else "int16")
    via_loader = LoadImage(reader=SimpleITKReader(dtype=np.float32), image_only=True)(path)
    default = LoadImage(reader=SimpleITKReader(), image_only=True)(path)
    assert via_loader.dtype == default.dtype and np.array_equal(via_loader.numpy(), default.numpy())


@pytest.mark.parametrize(("shape", "spatial_dims"), [((7, 130, 67), 3), ((5, 9), 2), ((5, 9, 3), 2), ((2, 4, 5, 6), 4)])
@pytest.mark.parametrize(("source", "target"), [(np.int16, np.float32), (np.uint16, None), (np.float64, np.float32)])
def test_reordering_helpers(shape, spatial_dims, source, target):
    buffer = np.random.default_rng(2).integers(0, 1000, shape).astype(source)
    order = tuple(reversed(range(spatial_dims))) + tuple(range(spatial_dims, len(shape)))
    expected = buffer.transpose(order).astype(target or source)
    contiguous = reversed_axes_contiguous(buffer, spatial_dims, target)
    assert contiguous.flags.c_contiguous and contiguous.dtype == expected.dtype
    np.testing.assert_array_equal(contiguous, expected)
    buffer.setflags(write=False)  # like SimpleITK's views: the view helper must copy, not alias
    view = reversed_axes_view(buffer, spatial_dims, target)
    assert view.flags.writeable and view.dtype == expected.dtype and not np.shares_memory(view, buffer)
    np.testing.assert_array_equal(view, expected)


@pytest.mark.parametrize("shape", [(40, 1), (1, 1, 12)])
def test_an_image_one_voxel_wide_is_copied_out_of_the_itk_buffer(tmp_path, shape):
    """Reversing the axes of a buffer with all but one axis of length 1 needs no reordering; the reader must still
    copy (SimpleITK's array view dies with its image), while writers may take the view (``copy=False``)."""
    data = np.arange(1, np.prod(shape) + 1, dtype=np.int16).reshape(shape)
    sitk.WriteImage(sitk.GetImageFromArray(data), str(tmp_path / "thin.nrrd"))
    volume = read_image_file(tmp_path / "thin.nrrd")
    _ = [np.ones(10_000) for _ in range(100)]  # reuse whatever memory was freed
    np.testing.assert_array_equal(volume.array, data.T)
    assert volume.array.flags.writeable and volume.array.flags.owndata
    reversed_order = tuple(reversed(range(len(shape))))
    assert np.shares_memory(reversed_axes_contiguous(data.T, len(shape), copy=False), data)
    assert not np.shares_memory(reversed_axes_contiguous(data.transpose(reversed_order), len(shape)), data)


def test_without_libdeflate_zlib_inflates_the_same_voxels(tmp_path, monkeypatch):
    data = np.random.default_rng(3).integers(0, 500, (9, 8, 7)).astype(np.int16)
    nib.save(nib.Nifti1Image(data, oblique_affine()), tmp_path / "img.nii.gz")
    with_libdeflate = read_image_file(tmp_path / "img.nii.gz")
    monkeypatch.setattr(integrity_module, "_gzip_decompress", None)
    assert_same_volume(read_image_file(tmp_path / "img.nii.gz"), with_libdeflate)
    np.testing.assert_array_equal(with_libdeflate.array, data)
