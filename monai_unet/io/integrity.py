"""A file's header checked against its content before any voxel is decoded.

NIfTI: the header's voxel size and voxel-to-world matrix must place voxels; the file must hold the bytes the header
promises; a ``.nii.gz`` is inflated once with every gzip member's CRC-32 and length checked, its declared size
bounded first by what the compressed stream can hold. NRRD and MetaImage: the declared voxel bytes must fit the
files (even compressed) and the memory available, and uncompressed inline voxels must fill it exactly. So a forged
size cannot make the reader allocate gigabytes, and a damaged file is refused naming it (``ImageInputError``).
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from nibabel.openers import ImageOpener

from monai_unet.io.errors import ImageInputError, last_line

try:  # libdeflate inflates gzip faster than zlib
    from deflate import DeflateError as _DeflateError
    from deflate import gzip_decompress as _gzip_decompress
except ImportError:  # pragma: no cover - depends on the environment
    _gzip_decompress, _DeflateError = None, OSError

__all__ = [
    "InflatedVoxels",
    "available_memory",
    "check_declared_size",
    "check_nifti_complete",
    "check_nifti_geometry",
]

#: Deflate cannot expand data more than about 1032:1 (RFC 1951: 258 bytes from a 2-bit code at best).
_MAX_DEFLATE_RATIO = 1032


def check_nifti_geometry(path: Path, header: nib.Nifti1Header) -> None:
    """Refuse a voxel-to-world mapping that places no voxel: a zero, NaN or singular affine (for a 2D image: its
    two voxel axes parallel or zero), or a voxel size of 0
    (or NaN) along an axis with more than one voxel (SimpleITK would read it as 1 mm, silently). Along an axis of
    one voxel a size of 0 is harmless and read as 1 mm."""
    with ImageOpener(path) as f:  # as stored: nibabel's loader replaces a pixdim of 0 by 1
        header = type(header).from_fileobj(f, check=False)
    shape = header.get_data_shape()[:3]
    zooms = np.asarray(header["pixdim"][1 : 1 + len(shape)], dtype=np.float64)
    for axis, (size, zoom) in enumerate(zip(shape, zooms, strict=False)):
        if size > 1 and not (np.isfinite(zoom) and zoom > 0):
            raise ImageInputError(
                path,
                f"declares a voxel size of {zoom:g} mm along axis {axis} (pixdim[{axis + 1}]), which has {size} voxels",
                "fix the header (e.g. nibabel's set_zooms) or re-export the image",
            )
    affine = np.asarray(header.get_best_affine(), dtype=np.float64)
    columns = affine[:3, : len(shape)]  # the voxel axes the image has (a 2D image's third column is not used)
    singular = not np.all(np.isfinite(affine))
    if not singular:
        smallest = np.linalg.svd(columns, compute_uv=False)[-1]
        singular = smallest < 1e-12 * max(np.abs(columns).max(), 1.0)
    if singular:
        raise ImageInputError(
            path,
            f"its voxel-to-world matrix is zero, not finite or singular ({np.round(affine[:3], 4).tolist()})",
            "fix the header's sform/qform or re-export the image",
        )


def check_nifti_complete(path: Path) -> tuple[nib.Nifti1Header, int, bytes | None]:
    """Raise when a NIfTI file holds fewer bytes than its header promises (a truncated copy or download), or when
    its gzip stream is damaged.

    A ``.nii.gz`` is inflated here, once, and every gzip member's CRC-32 and length are checked (SimpleITK's zlib
    path checks neither, so a bit flip would read as wrong voxels); before that, the size the header declares is
    bounded by what the compressed file can hold, so a forged size field cannot make us allocate gigabytes.

    Returns:
        The header, the byte offset of the voxels in the (uncompressed) file, header extensions included, and the
        verified uncompressed bytes of a ``.nii.gz`` (None for ``.nii``).
    """
    try:
        image = nib.load(path)
    except Exception as error:  # nibabel raises many types for a damaged header
        raise ImageInputError(path, f"is not a readable NIfTI file ({error})", "re-export or re-download it") from None
    header = image.header
    check_nifti_geometry(path, header)
    offset = int(image.dataobj.offset)  # the loaded header's vox_offset reads 0; the array proxy has the file's
    expected = offset + int(np.prod(header.get_data_shape())) * header.get_data_dtype().itemsize
    if not path.name.lower().endswith(".gz"):
        actual = path.stat().st_size
        if actual < expected:
            raise ImageInputError(
                path,
                f"is truncated or corrupt: its header promises {expected} bytes of data, the file holds {actual} bytes",
                "copy or download the file again",
            )
        return header, offset, None
    return header, offset, _inflate_verified(path, expected)


def _inflate_verified(path: Path, expected: int, data: bytes | None = None) -> bytes:
    """The whole uncompressed content of a gzip file (or of ``data``, the gzip stream inside ``path``), every
    member's CRC-32 and length checked."""
    data = path.read_bytes() if data is None else data
    if expected > _MAX_DEFLATE_RATIO * len(data) + 1024:
        raise ImageInputError(
            path,
            f"is corrupt: its header declares {expected} bytes of data, more than a gzip stream of {len(data)} bytes "
            "can hold (a damaged or forged size field)",
            "copy or download the file again",
        )
    # libdeflate sizes its output by the trailer's ISIZE, which a forged file can set to 4 GiB: it inflates only a
    # stream whose ISIZE is the size the header declares (zlib, below, streams anything else and checks it)
    trusted = len(data) >= 18 and int.from_bytes(data[-4:], "little") == expected % 2**32
    try:
        raw = _gzip_decompress(data) if _gzip_decompress is not None and trusted else None  # checks CRC and length
    except (_DeflateError, MemoryError):  # damaged: zlib, below, says how
        raw = None
    if raw is None or len(raw) < expected:
        try:  # several members (``cat a.gz b.gz``), or a damaged stream: zlib says which
            raw = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise ImageInputError(
                path,
                f"is truncated or corrupt: its gzip stream does not check out ({error})",
                "copy or download the file again",
            ) from None
    if len(raw) < expected:
        raise ImageInputError(
            path,
            f"is truncated or corrupt: its header promises {expected} bytes of data, the file holds a gzip stream of "
            f"{len(raw)} bytes",
            "copy or download the file again",
        )
    return raw


#: Header keys that name a detached data file (MetaImage ``.mhd``, detached NRRD ``.nhdr``).
_DATA_FILE_KEYS = ("ElementDataFile", "data file", "datafile")


def _stored_bytes(path: Path, head: bytes) -> int | None:
    """Bytes on disk that may hold ``path``'s voxels (``head``: the file's first bytes): the file, plus a detached
    data file its header names; None when the data are spread over a list or pattern of files (not checked)."""
    total = path.stat().st_size
    for line in head.decode("latin-1").splitlines():
        key, sep, value = line.partition("=" if "=" in line.split(":")[0] else ":")
        if sep and key.strip() in _DATA_FILE_KEYS:
            value = value.strip()
            if value == "LOCAL":
                return total
            if value.startswith("LIST") or "%" in value or " " in value:
                return None
            data = path.parent / value
            return total + data.stat().st_size if data.is_file() else total
    return total


def _attached_nrrd(path: Path, head: bytes) -> tuple[dict[str, str], int] | None:
    """The header fields (keys and values lower-case) of an NRRD file whose voxels follow its header in the same
    file, and where they start (``head``: the file's first bytes); None for other files and detached data."""
    end = head.find(b"\n\n")
    if path.suffix.lower() != ".nrrd" or end < 0:
        return None
    lines = head[:end].decode("latin-1").splitlines()
    fields = {k.strip().lower(): v.strip().lower() for k, _, v in (line.partition(":") for line in lines)}
    return None if "data file" in fields or "datafile" in fields else (fields, end + 2)


def _inline_raw_voxels(path: Path, head: bytes) -> int | None:
    """Bytes after the header of an NRRD file whose voxels follow it uncompressed (``head``: the file's first bytes);
    None for other layouts (compressed, detached, or a header not understood), not checked this way."""
    nrrd = _attached_nrrd(path, head)
    if nrrd is None:
        return None
    fields, start = nrrd
    return path.stat().st_size - start if fields.get("encoding") == "raw" else None


class _MetaImageData(NamedTuple):
    """Where a MetaImage's voxels are: the data file (the header itself for ``LOCAL``), their offset in it, whether
    they are zlib-compressed, whether the header names a ``HeaderSize`` to skip, and whether they are big-endian."""

    data_file: Path
    start: int
    compressed: bool
    skips: bool
    big_endian: bool


def _metaimage_data(path: Path, head: bytes) -> _MetaImageData | None:
    """For a MetaImage (``.mha``/``.mhd``) with one data file (``LOCAL`` or a detached ``.raw``), where its voxels
    are (``head``: the file's first bytes); None for other files (lists or patterns of data files)."""
    if path.suffix.lower() not in (".mha", ".mhd"):
        return None
    lines = head.decode("latin-1").splitlines()[:64]
    fields = {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in lines)}
    name = fields.get("ElementDataFile", "")
    if not name or name.startswith("LIST") or "%" in name or " " in name:
        return None
    compressed = fields.get("CompressedData") == "True"
    skips = fields.get("HeaderSize", "0") != "0"
    big = "True" in (fields.get("ElementByteOrderMSB"), fields.get("BinaryDataByteOrderMSB"))
    if name == "LOCAL":
        start = head.find(b"ElementDataFile")
        return _MetaImageData(path, head.index(b"\n", start) + 1, compressed, skips, big)
    return _MetaImageData(path.parent / name, 0, compressed, skips, big)


def _check_metaimage_data_file(path: Path, data: _MetaImageData) -> None:
    """Refuse a MetaImage whose data file is missing (SimpleITK would only say "No such file or directory")."""
    if not data.data_file.is_file():
        raise ImageInputError(
            path,
            f"its data file {data.data_file.name} " + ("is a folder" if data.data_file.is_dir() else "does not exist"),
            "keep the data file beside the header, named as its ElementDataFile line says",
        )


def _check_metaimage_voxels(
    path: Path, data: _MetaImageData, declared: int, info: sitk.ImageFileReader
) -> InflatedVoxels | None:
    """Refuse a MetaImage whose uncompressed voxels (without a ``HeaderSize``) are another number of bytes than its
    header declares, or whose zlib stream fails its Adler-32 or length check (ITK prints "Uncompress failed" and
    returns the voxels anyway, also for data that was never compressed); returns the verified voxels of a compressed
    one."""
    detached = data.data_file != path
    where = f" (in {data.data_file.name})" if detached else ""
    if data.compressed:
        with open(data.data_file, "rb") as f:
            f.seek(data.start)
            raw = _check_zlib_stream(path, declared, f.read(), where)
        return InflatedVoxels(info, raw, data.big_endian, not data.skips, path.suffix.lower().lstrip("."))
    held = data.data_file.stat().st_size - data.start
    if not data.skips and held != declared:
        sizes = " x ".join(map(str, info.GetSize()))
        raise ImageInputError(
            path,
            f"is truncated or corrupt: its data file {data.data_file.name} holds {held} bytes, its header declares "
            f"{declared}"
            if detached
            else f"is corrupt: it holds {held} bytes of uncompressed voxels, its header declares {declared} ({sizes})",
            "copy or download both files again" if detached else "copy or download the file again",
        )
    return None


def _check_zlib_stream(path: Path, expected: int, data: bytes, where: str = "") -> bytes:
    """Inflate a MetaImage's zlib stream, check its Adler-32 and its length (``where``: the data file, for the
    message) and return the voxel bytes."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data, expected + 1)
        raw_length = len(raw)
    except zlib.error as error:
        raise ImageInputError(
            path,
            f"is corrupt: its compressed voxels{where} do not check out ({error})",
            "copy or download the file again",
        ) from None
    if not inflater.eof or raw_length != expected:
        raise ImageInputError(
            path,
            f"is truncated or corrupt: its header declares {expected} bytes of voxels, its compressed stream{where} "
            + ("ends early" if not inflater.eof else f"holds {raw_length}"),
            "copy or download the file again",
        )
    return raw


def available_memory() -> int | None:
    """MemAvailable from ``/proc/meminfo`` in bytes; None where there is no such file."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@dataclass(frozen=True)
class InflatedVoxels:
    """The verified voxels of a compressed NRRD or MetaImage, so that they are inflated once
    (:func:`check_declared_size`).

    Args:
        info: SimpleITK's reading of the header (size, pixel type, components, geometry).
        raw: the uncompressed voxel bytes, checksum and length checked.
        big_endian: the header says the voxels are stored most significant byte first.
        plain: the bytes are the voxels as they are (no byte, line or header skips to apply).
        source_format: ``"nrrd"``, ``"mha"`` or ``"mhd"``.
    """

    info: sitk.ImageFileReader
    raw: bytes
    big_endian: bool
    plain: bool
    source_format: str


def check_declared_size(path: Path, info: sitk.ImageFileReader | None = None) -> InflatedVoxels | None:
    """Refuse an NRRD/MetaImage whose header declares more voxel bytes than its files can hold (even compressed, at
    deflate's 1032:1 at most) or than the memory available, before SimpleITK allocates them (a 171-byte NRRD can
    declare 2000³ voxels); an NRRD whose attached gzip stream fails its CRC-32 or length check (ITK inflates the
    declared bytes and never reads the trailer); and a MetaImage whose data file is missing, holds another size than
    declared, or whose zlib stream fails its Adler-32 or length check (ITK prints "Uncompress failed" and returns
    the voxels).

    Args:
        path: the file.
        info: SimpleITK's reading of its header, where already made (else it is read here).

    Returns:
        For an NRRD with attached gzip voxels or a compressed MetaImage, the verified bytes and the header as read
        (see :class:`InflatedVoxels`); else None.
    """
    if path.suffix.lower() not in (".mhd", ".nhdr", ".mha", ".nrrd"):
        return None
    with open(path, "rb") as f:
        head = f.read(65536)  # the header, read once for the checks below
    metaimage = _metaimage_data(path, head)
    if metaimage is not None:
        _check_metaimage_data_file(path, metaimage)
    reader = info
    if reader is None:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        try:
            reader.ReadImageInformation()
        except RuntimeError as error:
            raise ImageInputError(
                path, f"cannot be read ({last_line(str(error))})", "the file is corrupt or not in a supported format"
            ) from None
    voxels = int(np.prod([int(n) for n in reader.GetSize()], dtype=object))
    probe = sitk.Image([1] * reader.GetDimension(), reader.GetPixelID(), reader.GetNumberOfComponents())
    declared = voxels * sitk.GetArrayViewFromImage(probe).nbytes
    stored = _stored_bytes(path, head)
    if stored is not None and declared > _MAX_DEFLATE_RATIO * stored + 1024:
        raise ImageInputError(
            path,
            f"is corrupt: its header declares {declared} bytes of voxels ({' x '.join(map(str, reader.GetSize()))}), "
            f"more than its {stored} bytes on disk can hold",
            "copy or download the file again",
        )
    inline = _inline_raw_voxels(path, head)
    if inline is not None and inline != declared:
        raise ImageInputError(
            path,
            f"is corrupt: it holds {inline} bytes of uncompressed voxels, its header declares {declared} "
            f"({' x '.join(map(str, reader.GetSize()))})",
            "copy or download the file again",
        )
    available = available_memory()
    if available is not None and declared > available:
        raise ImageInputError(
            path,
            f"needs {declared / 2**30:.1f} GiB of memory for its voxels, {available / 2**30:.1f} GiB are available",
            "read it on a machine with more memory, or crop it first",
        )
    if metaimage is not None:
        return _check_metaimage_voxels(path, metaimage, declared, reader)
    nrrd = _attached_nrrd(path, head)
    if nrrd is None or nrrd[0].get("encoding") not in ("gzip", "gz"):
        return None
    fields = nrrd[0]
    plain = not {"byte skip", "byteskip", "line skip", "lineskip"} & set(fields)
    with open(path, "rb") as f:
        f.seek(nrrd[1])
        raw = _inflate_verified(path, declared, f.read())
    return InflatedVoxels(reader, raw, fields.get("endian") == "big", plain, "nrrd")
