"""``SavePlanard``: PNG/TIFF outputs are read back before they replace anything (a short write is caught)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai.data import MetaTensor
from PIL import Image

from monai_unet.io import OutputWriteError
from monai_unet.io.planar import SavePlanard


def _prediction() -> dict:
    labels = torch.zeros(1, 40, 30)
    labels[0, 5:20, 3:9] = 1
    return {"pred": MetaTensor(labels, meta={"filename_or_obj": "slice07.png"})}


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_written_pictures_read_back_exactly_and_transposed_to_rows(tmp_path, ext):
    SavePlanard("pred", output_dir=tmp_path, output_ext=ext)(_prediction())
    written = np.asarray(Image.open(tmp_path / f"slice07_seg{ext}"))
    np.testing.assert_array_equal(written, _prediction()["pred"][0].numpy().T)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"slice07_seg{ext}"], "no temporaries"


def test_a_short_write_keeps_the_previous_picture(tmp_path, monkeypatch):
    target = tmp_path / "slice07_seg.png"
    Image.fromarray(np.full((30, 40), 7, dtype=np.uint8)).save(target)
    before = target.read_bytes()
    real_write = sitk.WriteImage

    def short_write(image, path, *args):  # what SimpleITK does on a full disk: no error, a cut file
        real_write(image, path, *args)
        with open(path, "r+b") as f:
            f.truncate(40)

    monkeypatch.setattr(sitk, "WriteImage", short_write)
    with pytest.raises(OutputWriteError, match=r"slice07_seg\.png: the written file did not read back complete"):
        SavePlanard("pred", output_dir=tmp_path, output_ext=".png")(_prediction())
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slice07_seg.png"]
