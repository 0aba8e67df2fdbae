"""The reader's two reads checked against each other: what ``SimpleITKReader.read_header`` says of an input (no voxel
decoded) must be what ``get_data`` returns, or both must refuse it with the same message; only a problem in the voxel
data may pass the header read (``get_data`` finds it) or be worded differently by the two."""

from __future__ import annotations

import numpy as np

from monai_unet.io import ImageInputError, SimpleITKReader
from monai_unet.io.grid import VoxelGrid

#: Problems only a read of the voxel data can find (a header read passes these files).
VOXEL_PROBLEMS = (
    "truncated or corrupt",
    "is corrupt",
    "cannot decode its pixels",
    "NaN or infinite",
    "cannot be read",
    "GiB of memory",
    "is a colour image",
    "its data file",
)


def read_checking_header(source, **options) -> tuple[np.ndarray, dict]:
    """``get_data``'s ``(array, meta)`` for ``source``, after checking that ``read_header`` agrees with it: the same
    grid (to 1e-9 mm), channels and header meta keys, or the same refusal."""
    reader = SimpleITKReader(**options)
    try:
        header = reader.read_header(reader.read(source))
    except ImageInputError as refused:
        try:
            reader.get_data(reader.read(source))
        except ImageInputError as error:
            if str(error) != str(refused):  # a damaged file, which each read names in its own words
                assert _voxel_problem(refused) and _voxel_problem(error), (str(refused), str(error))
            raise
        raise AssertionError(f"the header read refused what the reader reads: {refused}") from None
    try:
        array, meta = reader.get_data(reader.read(source))
    except ImageInputError as error:
        assert _voxel_problem(error), f"the header read missed: {error}"
        raise
    grid = VoxelGrid.from_meta(meta)
    assert not header.grid.differences(grid, atol_mm=1e-9), header.grid.differences(grid, atol_mm=1e-9)
    channel_dim = meta["original_channel_dim"]
    channels = 1 if channel_dim != channel_dim else array.shape[int(channel_dim)]  # nan: no channel axis
    assert header.channels == channels, (header.channels, array.shape)
    for key, value in header.meta.items():
        assert meta[key] == value, key
    return array, meta


def _voxel_problem(error: ImageInputError) -> bool:
    return any(phrase in error.problem for phrase in VOXEL_PROBLEMS)
