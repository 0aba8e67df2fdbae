"""Headers that lie: sizes no file can hold, voxel sizes of 0, affines that place no voxel. Refused naming the file,
before anything large is allocated; honest files of the same formats still read."""

from __future__ import annotations

import gzip
import resource
import zlib

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from monai_unet.io import ImageInputError
from monai_unet.io.image_file import read_image_file

HUGE_NRRD = "NRRD0004\ntype: float\ndimension: 3\nsizes: 2000 2000 2000\nendian: little\nencoding: raw\n\n"
HUGE_MHA = "ObjectType = Image\nNDims = 3\nDimSize = 2000 2000 2000\nElementType = MET_FLOAT\nElementDataFile = LOCAL\n"


@pytest.mark.parametrize("name,header", [("huge.nrrd", HUGE_NRRD), ("huge.mha", HUGE_MHA)])
def test_a_forged_size_is_refused_before_allocating(tmp_path, name, header):
    """A 100-byte header declaring 2000³ floats (32 GB): refused naming the file, without the allocation."""
    path = tmp_path / name
    path.write_bytes(header.encode() + bytes(64))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageInputError, match=rf"{name}: is corrupt: its header declares 32000000000 bytes"):
        read_image_file(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: nothing near 32 GB


def test_honest_nrrd_and_metaimage_files_still_read(tmp_path):
    """Compressed NRRD, MetaImage with its voxels inline and detached (.mhd + .raw): read as written."""
    array = np.random.default_rng(0).integers(0, 1000, size=(12, 20, 16), dtype=np.int16)
    image = sitk.GetImageFromArray(array)
    for name, compress in (("a.nrrd", True), ("b.mha", False), ("c.mhd", False)):
        sitk.WriteImage(image, str(tmp_path / name), useCompression=compress)
        volume = read_image_file(tmp_path / name)
        np.testing.assert_array_equal(volume.array, array.transpose(2, 1, 0))
    assert (tmp_path / "c.raw").is_file()
    (tmp_path / "c.raw").write_bytes(b"")  # the detached voxels lost: the header's size no longer fits
    with pytest.raises(ImageInputError, match=r"c\.mhd: "):
        read_image_file(tmp_path / "c.mhd")


def _nifti(path, zooms=(1.0, 1.0, 2.0), affine=None, shape=(8, 9, 5)):
    """A NIfTI whose header says ``zooms`` (pixdim) and, when given, ``affine`` (sform), written into the header's
    bytes: nibabel refuses to store such values itself."""
    nib.save(nib.Nifti1Image(np.ones(shape, dtype=np.int16), np.eye(4)), path)
    header = nib.load(path).header.copy()
    header["pixdim"][1:4] = zooms
    if affine is not None:
        header["srow_x"], header["srow_y"], header["srow_z"] = affine[:3]
        header["sform_code"], header["qform_code"] = 1, 0
    compressed = path.name.endswith(".gz")
    content = gzip.decompress(path.read_bytes()) if compressed else path.read_bytes()
    content = header.binaryblock + content[348:]
    path.write_bytes(gzip.compress(content) if compressed else content)
    return path


def test_voxel_size_zero_and_singular_affines_are_refused(tmp_path):
    with pytest.raises(ImageInputError, match=r"zero\.nii\.gz: declares a voxel size of 0 mm along axis 2"):
        read_image_file(_nifti(tmp_path / "zero.nii.gz", zooms=(1.0, 1.0, 0.0)))
    one_slice = read_image_file(_nifti(tmp_path / "slice.nii.gz", zooms=(0.5, 0.5, 0.0), shape=(8, 9, 1)))
    assert one_slice.grid.spacing[:2] == (0.5, 0.5)  # an axis of one voxel may have no size
    nan = np.eye(4)
    nan[0, 0] = np.nan
    with pytest.raises(ImageInputError, match=r"nan\.nii\.gz: its voxel-to-world matrix is zero, not finite"):
        read_image_file(_nifti(tmp_path / "nan.nii.gz", affine=nan))
    flat = np.diag([1.0, 1.0, 0.0, 1.0])
    with pytest.raises(ImageInputError, match=r"flat\.nii: .*(voxel size of 0|singular)"):
        read_image_file(_nifti(tmp_path / "flat.nii", affine=flat, zooms=(1.0, 1.0, 1.0)))


def test_a_2d_nifti_is_checked_on_its_two_axes(tmp_path):
    """A 2D NIfTI: its third affine column is not used (may be 0, read fine); its two axes parallel is refused."""
    plane = np.diag([0.7, 0.7, 0.0, 1.0])
    picture = read_image_file(_nifti(tmp_path / "plane.nii.gz", zooms=(0.7, 0.7, 0.0), affine=plane, shape=(8, 9)))
    assert picture.array.shape[:2] == (8, 9)
    parallel = np.eye(4)
    parallel[:3, 1] = parallel[:3, 0]  # both voxel axes along x: the rows land on top of each other
    with pytest.raises(ImageInputError, match=r"parallel\.nii\.gz: its voxel-to-world matrix is .*singular"):
        read_image_file(_nifti(tmp_path / "parallel.nii.gz", zooms=(1.0, 1.0, 0.0), affine=parallel, shape=(8, 9)))


def test_a_gzip_nrrd_with_a_damaged_stream_or_no_trailer_is_refused(tmp_path):
    """ITK inflates the declared bytes of a gzip NRRD and never reads the CRC-32 and length at the stream's end: a
    flipped bit or a lost trailer is refused naming the file, not read as other voxels."""
    array = np.random.default_rng(1).integers(0, 1000, size=(12, 20, 16), dtype=np.int16)
    good = tmp_path / "good.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(array), str(good), useCompression=True)
    content = good.read_bytes()
    start = content.find(b"\n\n") + 2
    flipped = bytearray(content)
    flipped[start + (len(content) - start) // 2] ^= 0x10
    (tmp_path / "flipped.nrrd").write_bytes(bytes(flipped))
    (tmp_path / "no_trailer.nrrd").write_bytes(content[:-8])
    for name in ("flipped.nrrd", "no_trailer.nrrd"):
        with pytest.raises(ImageInputError, match=rf"{name}: is truncated or corrupt"):
            read_image_file(tmp_path / name)
    np.testing.assert_array_equal(read_image_file(good).array, array.transpose(2, 1, 0))


def test_gzip_nrrd_voxels_inflated_once_read_as_simpleitk_reads_them(tmp_path):
    """The verified gzip stream is the voxels the reader returns (no second inflate by ITK): big- and little-endian,
    integer and float, 2D and 3D, the same voxels and geometry as ``sitk.ReadImage``."""
    import gzip as gz

    big = np.arange(24, dtype=">i2").reshape(2, 3, 4)
    header = (
        "NRRD0004\ntype: short\ndimension: 3\nsizes: 4 3 2\nendian: big\nencoding: gzip\n"
        "space: left-posterior-superior\nspace directions: (0,1,0) (1,0,0) (0,0,2)\nspace origin: (5,-3,1)\n\n"
    )
    (tmp_path / "big.nrrd").write_bytes(header.encode() + gz.compress(big.tobytes()))
    floats = sitk.GetImageFromArray(np.random.default_rng(0).normal(size=(5, 6, 7)).astype(np.float32))
    floats.SetSpacing((0.5, 0.7, 2.0))
    sitk.WriteImage(floats, str(tmp_path / "float.nrrd"), useCompression=True)
    sitk.WriteImage(sitk.GetImageFromArray(np.eye(9, 11, dtype=np.uint8)), str(tmp_path / "plane.nrrd"), True)
    for name in ("big.nrrd", "float.nrrd", "plane.nrrd"):
        _assert_read_as_simpleitk(read_image_file(tmp_path / name), sitk.ReadImage(str(tmp_path / name)))


def _assert_read_as_simpleitk(ours, theirs: sitk.Image) -> None:
    """Our ``Volume`` holds SimpleITK's voxels (in MONAI's axis order, native byte order) and geometry."""
    expected = sitk.GetArrayFromImage(theirs)
    np.testing.assert_array_equal(ours.array, expected.transpose(*reversed(range(expected.ndim))))
    assert ours.array.dtype == expected.dtype.newbyteorder("=")
    np.testing.assert_allclose(ours.grid.origin, theirs.GetOrigin())
    np.testing.assert_allclose(ours.grid.spacing, theirs.GetSpacing())
    np.testing.assert_allclose(ours.grid.direction.ravel(), theirs.GetDirection())


def test_compressed_metaimage_voxels_inflated_once_read_as_simpleitk_reads_them(tmp_path, monkeypatch):
    """A compressed MetaImage's verified zlib stream is the voxels the reader returns (ITK does not inflate it a
    second time): big- and little-endian, integer and float, 2D and 3D, attached and detached, the same voxels and
    geometry as ``sitk.ReadImage``."""
    big = np.arange(24, dtype=">i2").reshape(2, 3, 4)
    header = (
        "ObjectType = Image\nNDims = 3\nDimSize = 4 3 2\nElementSpacing = 1 1 2\nOffset = 5 -3 1\n"
        "ElementType = MET_SHORT\nElementByteOrderMSB = True\nCompressedData = True\n"
        f"CompressedDataSize = {len(zlib.compress(big.tobytes()))}\nElementDataFile = LOCAL\n"
    )
    (tmp_path / "big.mha").write_bytes(header.encode() + zlib.compress(big.tobytes()))
    floats = sitk.GetImageFromArray(np.random.default_rng(0).normal(size=(5, 6, 7)).astype(np.float32))
    floats.SetSpacing((0.5, 0.7, 2.0))
    sitk.WriteImage(floats, str(tmp_path / "float.mha"), useCompression=True)
    sitk.WriteImage(floats, str(tmp_path / "float.mhd"), useCompression=True)
    sitk.WriteImage(sitk.GetImageFromArray(np.eye(9, 11, dtype=np.uint8)), str(tmp_path / "plane.mha"), True)
    from monai_unet.io import image_file

    names = ("big.mha", "float.mha", "float.mhd", "plane.mha")
    expected = {name: sitk.ReadImage(str(tmp_path / name)) for name in names}
    monkeypatch.setattr(image_file.sitk, "ReadImage", lambda *a, **k: pytest.fail("ITK inflated the file again"))
    for name in names:
        _assert_read_as_simpleitk(read_image_file(tmp_path / name), expected[name])


def test_a_forged_gzip_length_field_is_never_used_to_size_the_output(tmp_path, monkeypatch):
    """The last 4 bytes of a gzip stream (ISIZE) size libdeflate's output: forged to 4 GiB - 1, the file is refused
    naming it and libdeflate is not asked to inflate it; an honest file still takes the fast path."""
    from monai_unet.io import integrity

    if integrity._gzip_decompress is None:
        pytest.skip("libdeflate (deflate) is not installed")
    calls = []
    real = integrity._gzip_decompress
    monkeypatch.setattr(integrity, "_gzip_decompress", lambda data: calls.append(len(data)) or real(data))
    array = np.random.default_rng(1).integers(0, 1000, size=(10, 9, 8), dtype=np.int16)
    honest, forged = tmp_path / "honest.nii.gz", tmp_path / "forged.nii.gz"
    nib.save(nib.Nifti1Image(array, np.eye(4)), honest)
    forged.write_bytes(honest.read_bytes()[:-4] + (2**32 - 1).to_bytes(4, "little"))
    np.testing.assert_array_equal(read_image_file(honest).array, array)
    assert len(calls) == 1
    with pytest.raises(ImageInputError, match=r"forged\.nii\.gz: is truncated or corrupt"):
        read_image_file(forged)
    assert len(calls) == 1, "libdeflate was given the forged stream"


def _mhd_pair(folder, array):
    """A MetaImage header and its detached .raw, written by SimpleITK; returns (header text, raw bytes)."""
    sitk.WriteImage(sitk.GetImageFromArray(array), str(folder / "base.mhd"))
    return (folder / "base.mhd").read_text(), (folder / "base.raw").read_bytes()


@pytest.mark.parametrize(
    "damage,problem",
    [
        ("missing", "its data file case.raw does not exist"),
        ("folder", "its data file case.raw is a folder"),
        ("short", "its data file case.raw holds 662 bytes, its header declares 672"),
        ("long", "its data file case.raw holds 676 bytes, its header declares 672"),
        ("not compressed", r"its compressed voxels \(in case.raw\) do not check out"),
        ("bad checksum", r"its compressed voxels \(in case.raw\) do not check out"),
    ],
)
def test_a_metaimage_with_a_damaged_detached_data_file_is_refused_naming_it(tmp_path, damage, problem):
    """.mhd + .raw: a data file that is missing, of another size, or whose zlib stream does not check out is refused
    (SimpleITK said "No such file or directory" for a short one and read garbage for uncompressed data declared
    compressed); the honest compressed pair still reads."""
    array = np.random.default_rng(0).integers(0, 1000, size=(8, 7, 6), dtype=np.int16)
    header, raw = _mhd_pair(tmp_path, array)
    header = header.replace("base.raw", "case.raw")
    data = tmp_path / "case.raw"
    if damage in ("not compressed", "bad checksum"):
        header = header.replace("CompressedData = False", "CompressedData = True")
    if damage == "folder":
        data.mkdir()
    elif damage != "missing":
        content = {"short": raw[:-10], "long": raw + b"xxxx", "not compressed": raw}.get(damage)
        data.write_bytes(content if content is not None else zlib.compress(raw)[:-2] + b"zz")
    (tmp_path / "case.mhd").write_text(header)
    with pytest.raises(ImageInputError, match=rf"case\.mhd: .*{problem}"):
        read_image_file(tmp_path / "case.mhd")
    if data.is_dir():
        data.rmdir()
    data.write_bytes(zlib.compress(raw))  # the honest compressed pair
    (tmp_path / "case.mhd").write_text(header.replace("CompressedData = False", "CompressedData = True"))
    np.testing.assert_array_equal(read_image_file(tmp_path / "case.mhd").array, array.transpose(2, 1, 0))
