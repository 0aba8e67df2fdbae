"""SimpleITKReader on files: MONAI's affine convention, native dtype, channels, and every bad-input refusal."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from monai.data import NibabelReader
from monai.transforms import Compose, EnsureChannelFirstd, LoadImage, LoadImaged
from PIL import Image
from reading import read_checking_header

from monai_unet.io import ImageInputError, SimpleITKReader


def oblique_affine() -> np.ndarray:
    """An LPS-ish oblique RAS affine with anisotropic voxels (rotation about z by 30°)."""
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    rotation = np.array([[-c, s, 0], [-s, -c, 0], [0, 0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.7, 0.9, 2.5])
    affine[:3, 3] = [12.0, -40.0, 7.5]
    return affine


def write_nifti(path, array, affine=None) -> str:
    nib.save(nib.Nifti1Image(array, oblique_affine() if affine is None else affine), path)
    return str(path)


def read(path, **options):
    return read_checking_header(path, **options)


def test_nifti_matches_monai_nibabel_reader(tmp_path):
    data = np.random.default_rng(0).integers(-1000, 2000, (9, 7, 5)).astype(np.int16)
    path = write_nifti(tmp_path / "ct.nii.gz", data)
    ours = LoadImage(reader=SimpleITKReader(), image_only=True, dtype=None)(path)
    theirs = LoadImage(reader=NibabelReader(), image_only=True, dtype=None)(path)
    assert ours.shape == theirs.shape == data.shape
    assert ours.dtype == theirs.dtype  # native int16 kept
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_allclose(ours.affine.numpy(), theirs.affine.numpy(), atol=1e-5)
    assert np.isnan(ours.meta["original_channel_dim"]) and ours.meta["space"] == "RAS"
    np.testing.assert_array_equal(ours.meta["spatial_shape"], data.shape)
    lps = np.diag([-1, -1, 1, 1]) @ oblique_affine()
    np.testing.assert_allclose(ours.meta["source_origin_lps"], lps[:3, 3], atol=1e-5)
    np.testing.assert_allclose(ours.meta["source_spacing"], [0.7, 0.9, 2.5], atol=1e-6)
    np.testing.assert_allclose(ours.meta["source_direction_lps"] * [0.7, 0.9, 2.5], lps[:3, :3], atol=1e-5)


def test_loadimaged_in_compose_gives_channel_first_float(tmp_path):
    path = write_nifti(tmp_path / "ct.nii.gz", np.arange(60, dtype=np.int16).reshape(5, 4, 3))
    out = Compose([LoadImaged("image", reader=SimpleITKReader()), EnsureChannelFirstd("image")])({"image": path})
    assert tuple(out["image"].shape) == (1, 5, 4, 3) and out["image"].dtype.is_floating_point


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_nrrd_and_metaimage_geometry(tmp_path, suffix):
    image = sitk.GetImageFromArray(np.arange(4 * 5 * 6, dtype=np.uint8).reshape(6, 5, 4))  # z, y, x
    image.SetSpacing((0.5, 0.75, 3.0))
    image.SetOrigin((10.0, -20.0, 30.0))
    direction = np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1.0]])
    image.SetDirection(direction.ravel().tolist())
    path = tmp_path / f"img{suffix}"
    sitk.WriteImage(image, str(path))
    array, meta = read(path)
    assert array.shape == (4, 5, 6) and array.dtype == np.uint8
    assert array[1, 2, 3] == sitk.GetArrayFromImage(image)[3, 2, 1]
    lps = np.eye(4)
    lps[:3, :3] = direction @ np.diag([0.5, 0.75, 3.0])
    lps[:3, 3] = [10.0, -20.0, 30.0]
    np.testing.assert_allclose(meta["affine"], np.diag([-1, -1, 1, 1]) @ lps, atol=1e-9)


def test_png_2d(sample_data):
    path = sample_data / "isbi2012_em" / "images" / "00.png"
    array, meta = read(path)
    expected = np.asarray(Image.open(path))
    assert array.shape == expected.shape[::-1]  # (x, y)
    np.testing.assert_array_equal(array, expected.T)
    assert meta["affine"].shape == (3, 3)


def test_gif_and_bmp_pictures(tmp_path):
    """DRIVE ships its vessel masks as GIF (a grey palette): read as the grey levels shown, one channel, on the
    same grid as the PNG of the same pixels; a colour GIF is 3 channels; a grey BMP stays one channel."""
    from monai_unet.io.image_file import channels_in_file

    rng = np.random.default_rng(0)
    mask = np.where(rng.random((30, 40)) > 0.7, 255, 0).astype(np.uint8)
    Image.fromarray(mask).save(tmp_path / "mask.png")
    Image.fromarray(mask).save(tmp_path / "mask.gif")  # Pillow stores it as a 2-entry grey palette
    assert Image.open(tmp_path / "mask.gif").mode == "P"
    Image.fromarray(mask).save(tmp_path / "mask.bmp")
    png, png_meta = read(tmp_path / "mask.png")
    for name in ("mask.gif", "mask.bmp"):
        array, meta = read(tmp_path / name)
        assert array.shape == (40, 30) and array.dtype == np.uint8, name
        np.testing.assert_array_equal(array, png)
        np.testing.assert_allclose(np.asarray(meta["affine"]), np.asarray(png_meta["affine"]))
        assert channels_in_file(tmp_path / name) == 1
    colour = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(colour).save(tmp_path / "photo.bmp")
    Image.fromarray(colour).convert("P").save(tmp_path / "photo.gif")
    array, _ = read(tmp_path / "photo.bmp")
    assert array.shape == (40, 30, 3)
    np.testing.assert_array_equal(array, colour.transpose(1, 0, 2))
    assert channels_in_file(tmp_path / "photo.gif") == 3 and read(tmp_path / "photo.gif")[0].shape == (40, 30, 3)
    (tmp_path / "junk.gif").write_bytes(b"GIF89a not really")
    with pytest.raises(ImageInputError, match=r"junk.gif: cannot be read"):
        read(tmp_path / "junk.gif")


def test_palette_label_pictures_read_as_their_indices_on_request(tmp_path):
    """PASCAL VOC saves its masks as colour palette PNGs: index = class, colours for display. Images read the colours
    shown (3 channels); a label reader (``palette_indices``) reads the indices; a grey palette (DRIVE's GIF masks)
    reads as its grey levels either way."""
    from monai_unet.io.image_file import is_colour_palette

    classes = np.zeros((30, 40), dtype=np.uint8)
    classes[5:15, 5:20], classes[18:28, 22:38], classes[0, :] = 1, 2, 255  # 255: VOC's 'void' border
    palette = Image.fromarray(classes, mode="P")
    palette.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0, 0, 0] * 252 + [224, 224, 192])
    for suffix in (".png", ".gif", ".bmp"):
        path = tmp_path / f"voc{suffix}"
        palette.save(path, optimize=False)  # Pillow's GIF writer would otherwise renumber the palette
        assert is_colour_palette(path), suffix
        indices, meta = read(path, palette_indices=True)
        assert indices.shape == (40, 30), suffix
        np.testing.assert_array_equal(indices, classes.T)
        assert np.asarray(meta["affine"]).shape == (3, 3)
        colours, _ = read(path)
        assert colours.shape == (40, 30, 3) and tuple(colours[10, 10]) == (128, 0, 0), suffix
    Image.fromarray(np.where(classes == 1, 255, 0).astype(np.uint8)).save(tmp_path / "grey.gif")
    assert not is_colour_palette(tmp_path / "grey.gif") and not is_colour_palette(tmp_path / "voc.nii.gz")
    grey, _ = read(tmp_path / "grey.gif", palette_indices=True)
    assert set(np.unique(grey)) == {0, 255}


def test_the_alpha_channel_of_a_picture_is_dropped(tmp_path):
    """Exporters add an opaque alpha channel to some PNGs of a set: RGBA reads as its RGB, grey + alpha as grey, so
    one set's pictures keep one channel count; a 4-sample TIFF (microscopy channels) keeps its 4."""
    from monai_unet.io.image_file import channels_in_file

    rng = np.random.default_rng(1)
    colour = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    opaque = np.full((20, 30, 1), 255, dtype=np.uint8)
    Image.fromarray(colour).save(tmp_path / "rgb.png")
    Image.fromarray(np.concatenate([colour, opaque], axis=-1)).save(tmp_path / "rgba.png")
    Image.fromarray(np.concatenate([colour, opaque], axis=-1)).save(tmp_path / "rgba.gif")  # a palette, transparency
    Image.fromarray(np.concatenate([colour[..., :1], opaque], axis=-1), mode="LA").save(tmp_path / "grey_alpha.png")
    rgb, _ = read(tmp_path / "rgb.png")
    for name in ("rgba.png", "rgb.png"):
        array, _ = read(tmp_path / name)
        np.testing.assert_array_equal(array, rgb)
        assert channels_in_file(tmp_path / name) == 3
    assert read(tmp_path / "rgba.gif")[0].shape == (30, 20, 3) and channels_in_file(tmp_path / "rgba.gif") == 3
    grey, _ = read(tmp_path / "grey_alpha.png")
    np.testing.assert_array_equal(grey, colour[..., 0].T)
    assert channels_in_file(tmp_path / "grey_alpha.png") == 1
    four = rng.integers(0, 4000, (20, 30, 4)).astype(np.uint16)
    sitk.WriteImage(sitk.GetImageFromArray(four, isVector=True), str(tmp_path / "four.tif"))
    assert read(tmp_path / "four.tif")[0].shape == (30, 20, 4) and channels_in_file(tmp_path / "four.tif") == 4


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int16])
def test_2d_nifti_is_2d_whatever_its_data_type(tmp_path, dtype):
    """A 2D NIfTI is read as ITK reads it, whether its voxels take the nibabel path (floating point) or ITK's
    (integers): a 2D image and its 2D integer label must come out on one grid."""
    data = np.arange(6 * 5, dtype=dtype).reshape(6, 5)
    affine = np.diag([0.7, 0.8, 5.0, 1.0])
    affine[:3, 3] = [3.0, -4.0, 9.0]
    array, meta = read(write_nifti(tmp_path / "slice.nii.gz", data, affine))
    assert array.shape == (6, 5) and array.dtype == dtype
    np.testing.assert_array_equal(array, data)
    expected = np.array([[0.7, 0, 3.0], [0, 0.8, -4.0], [0, 0, 1]])  # RAS, the first two axes of the file's affine
    np.testing.assert_allclose(np.asarray(meta["affine"]), expected)


def test_channels_from_several_files_and_grid_mismatch(tmp_path):
    a = write_nifti(tmp_path / "flair.nii.gz", np.ones((4, 5, 6), np.float32))
    b = write_nifti(tmp_path / "t1c.nii.gz", np.full((4, 5, 6), 2, np.float32))
    image = LoadImage(reader=SimpleITKReader(), image_only=True)([a, b])
    assert tuple(image.shape) == (2, 4, 5, 6) and image.meta["original_channel_dim"] == 0
    assert float(image[1].mean()) == 2.0
    other_shape = write_nifti(tmp_path / "small.nii.gz", np.ones((4, 5, 5), np.float32))
    with pytest.raises(ImageInputError, match=r"small.nii.gz.*shape.*flair.nii.gz"):
        read([a, other_shape])
    shifted = oblique_affine()
    shifted[0, 3] += 1.0
    moved = write_nifti(tmp_path / "moved.nii.gz", np.ones((4, 5, 6), np.float32), shifted)
    with pytest.raises(ImageInputError, match=r"moved.nii.gz.*different affine from .*flair.nii.gz"):
        read([a, moved])


def test_truncated_nifti_refused_even_through_load_image(tmp_path):
    path = write_nifti(tmp_path / "ct.nii.gz", np.random.default_rng(1).integers(0, 999, (30, 30, 30), np.int16))
    blob = (tmp_path / "ct.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ImageInputError, match=r"cut.nii.gz: is truncated"):
        LoadImage(reader=SimpleITKReader(), image_only=True)(tmp_path / "cut.nii.gz")
    raw = gzip.decompress(blob)
    (tmp_path / "cut.nii").write_bytes(raw[: len(raw) - 100])
    with pytest.raises(ImageInputError, match=r"cut.nii: is truncated"):
        read(tmp_path / "cut.nii")
    assert read(path)[0].shape == (30, 30, 30)


@pytest.mark.parametrize("kind", ["plain", "scaled", "big-endian", "float"])
def test_damaged_gzip_stream_is_refused_whatever_the_reading_path(tmp_path, kind):
    """A flipped bit in the compressed voxels fails the gzip CRC, on the libdeflate path (plain integers) and on
    the paths that used to hand the file to ITK's or nibabel's zlib unchecked (scl_slope, big-endian, float)."""
    rng = np.random.default_rng(2)
    array = rng.integers(0, 999, (40, 40, 20)).astype(np.float32 if kind == "float" else np.int16)
    image = nib.Nifti1Image(array, oblique_affine())
    if kind == "scaled":
        image.header.set_slope_inter(2.0, -5.0)
    if kind == "big-endian":
        image = nib.Nifti1Image(array.astype(">i2"), oblique_affine(), nib.Nifti1Header(endianness=">"))
    nib.save(image, tmp_path / "good.nii.gz")
    expected = read(tmp_path / "good.nii.gz")[0]
    blob = bytearray((tmp_path / "good.nii.gz").read_bytes())
    blob[len(blob) // 2] ^= 0x10
    (tmp_path / "flipped.nii.gz").write_bytes(bytes(blob))
    with pytest.raises(ImageInputError, match=r"flipped.nii.gz: is truncated or corrupt"):
        read(tmp_path / "flipped.nii.gz")
    raw = gzip.decompress((tmp_path / "good.nii.gz").read_bytes())
    (tmp_path / "two_members.nii.gz").write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    np.testing.assert_array_equal(read(tmp_path / "two_members.nii.gz")[0], expected)  # ``cat a.gz b.gz`` is valid


def test_forged_size_field_is_refused_before_allocating(tmp_path):
    """A 100-byte header declaring 2048³ int16 voxels: refused from the file size, never inflated into 16 GiB."""
    header = nib.Nifti1Header()
    header.set_data_shape((2048, 2048, 2048))
    header.set_data_dtype(np.int16)
    blob = header.binaryblock + b"\0" * 4
    (tmp_path / "forged.nii.gz").write_bytes(gzip.compress(blob))
    with pytest.raises(ImageInputError, match=r"forged.nii.gz: is corrupt: its header declares \d+ bytes"):
        read(tmp_path / "forged.nii.gz")


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(ImageInputError, match=r"nothere.nii.gz: does not exist"):
        read(tmp_path / "nothere.nii.gz")
    (tmp_path / "junk.nrrd").write_text("this is not an image")
    with pytest.raises(ImageInputError, match=r"junk.nrrd: cannot be read"):
        read(tmp_path / "junk.nrrd")


def test_4d_refused_unless_allowed(tmp_path):
    path = write_nifti(tmp_path / "dwi.nii.gz", np.zeros((4, 5, 6, 3), np.int16))
    with pytest.raises(ImageInputError, match=r"dwi.nii.gz: is a 4D image of shape \(4, 5, 6, 3\)"):
        read(path)
    array, meta = read(path, allow_4d=True)
    assert array.shape == (4, 5, 6, 3) and meta["original_channel_dim"] == -1
    single = write_nifti(tmp_path / "one.nii.gz", np.zeros((4, 5, 6, 1), np.int16))
    assert read(single)[0].shape == (4, 5, 6)


def test_nan_and_inf_refused(tmp_path):
    data = np.zeros((4, 5, 6), np.float32)
    data[1, 2, 3] = np.nan
    data[3, 0, 0] = np.inf
    path = write_nifti(tmp_path / "nan.nii.gz", data)
    with pytest.raises(
        ImageInputError, match=r"nan.nii.gz: holds 2 NaN or infinite voxel\(s\), the first at voxel \(1, 2, 3\)"
    ):
        read(path)
    assert np.isnan(read(path, check_finite=False)[0][1, 2, 3])


def test_slightly_non_orthonormal_nifti_read_with_warning(tmp_path):
    affine = oblique_affine()
    affine[0, 1] += 2e-4  # a writer's rounding: ITK refuses this file
    path = write_nifti(tmp_path / "rounded.nii.gz", np.arange(120, dtype=np.int16).reshape(4, 5, 6), affine)
    with pytest.raises(RuntimeError, match=r"orthonormal"):
        sitk.ReadImage(path)
    with pytest.warns(UserWarning, match=r"not orthonormal"):
        array, meta = read(path)
    np.testing.assert_array_equal(array, np.arange(120).reshape(4, 5, 6))
    np.testing.assert_allclose(meta["affine"], nib.load(path).affine, atol=1e-3)
    direction = meta["source_direction_lps"]
    np.testing.assert_allclose(direction.T @ direction, np.eye(3), atol=1e-12)


def test_sheared_nifti_refused(tmp_path):
    affine = oblique_affine()
    affine[0, 1] += 0.3
    path = write_nifti(tmp_path / "sheared.nii.gz", np.zeros((4, 5, 6), np.int16), affine)
    with pytest.raises(ImageInputError, match=r"sheared.nii.gz: its voxel axes are sheared"):
        read(path)
