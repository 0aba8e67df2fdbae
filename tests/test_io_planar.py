"""2D outputs through ``SavePredictiond``: PNG labels and TIFF probabilities read back exactly before they replace
anything (a short write is caught)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai.data import MetaTensor
from PIL import Image

from monai_unet.io import ImageInputError, OutputWriteError, SavePredictiond


def _prediction(channels: int = 1, scale: float = 1.0) -> MetaTensor:
    values = torch.zeros(channels, 40, 30)
    values[:, 5:20, 3:9] = scale
    values[-1, 0, 0] = scale / 2 if scale != 1 else 1
    return MetaTensor(values, affine=torch.eye(3), meta={"filename_or_obj": "slice07.png"})


def test_label_png_reads_back_exactly_and_transposed_to_rows(tmp_path):
    SavePredictiond("pred", output_dir=tmp_path, output_ext=".png")({"pred": _prediction()})
    written = np.asarray(Image.open(tmp_path / "slice07_seg.png"))
    assert written.dtype == np.uint8
    np.testing.assert_array_equal(written, _prediction()[0].numpy().T)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slice07_seg.png"], "no temporaries"


@pytest.mark.parametrize("channels", [1, 3])
def test_probability_tiff_holds_one_float_sample_per_class(tmp_path, channels):
    probabilities = _prediction(channels, scale=0.75)
    out = SavePredictiond("p", output_dir=tmp_path, output_postfix="prob", output_ext=".tif", probabilities=True)(
        {"p": probabilities}
    )
    assert out["p"].meta["saved_to"] == str(tmp_path / "slice07_prob.tif")
    back = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "slice07_prob.tif")))
    expected = probabilities.numpy().transpose(2, 1, 0)  # (rows = y, columns = x, class)
    np.testing.assert_array_equal(back, expected[..., 0] if channels == 1 else expected)
    assert back.dtype == np.float32


def test_a_label_above_255_is_refused_for_png_and_fractions_are_not_labels(tmp_path):
    labels = _prediction() * 300
    with pytest.raises(ImageInputError, match="8-bit PNG"):
        SavePredictiond("pred", output_dir=tmp_path, output_ext=".png")({"pred": labels})
    with pytest.raises(ImageInputError, match="fractional"):
        SavePredictiond("pred", output_dir=tmp_path, output_ext=".png")({"pred": _prediction(scale=0.75)})
    assert list(tmp_path.iterdir()) == []


def test_a_3d_prediction_is_refused_for_a_picture(tmp_path):
    volume = MetaTensor(torch.zeros(1, 8, 8, 4), affine=torch.eye(4), meta={"filename_or_obj": "ct.nii.gz"})
    with pytest.raises(ImageInputError, match="one 2D slice"):
        SavePredictiond("pred", output_dir=tmp_path, output_ext=".png")({"pred": volume})


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
        SavePredictiond("pred", output_dir=tmp_path, output_ext=".png")({"pred": _prediction()})
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slice07_seg.png"]


def test_bundles_planned_before_0_6_still_write_their_pictures(tmp_path):
    """``monai_unet.io.planar.SavePlanard`` as a 0.5 planned inference config names it: PNG labels, TIFF floats."""
    from monai.bundle import ConfigParser

    config = {
        "labels": {
            "_target_": "monai_unet.io.planar.SavePlanard",
            "keys": "pred",
            "output_dir": str(tmp_path),
            "scale": 255,  # the 0.5 paper config's black/white membranes
        },
        "floats": {
            "_target_": "monai_unet.io.planar.SavePlanard",
            "keys": "prob",
            "output_dir": str(tmp_path),
            "output_postfix": "prob",
            "output_ext": ".tif",
            "name_key": "case",
        },
    }
    parser = ConfigParser(config)
    data = {"pred": _prediction(), "prob": _prediction(scale=0.75), "case": "slice07"}
    out = parser.get_parsed_content("floats")(parser.get_parsed_content("labels")(data))
    assert out["pred"].max() == 1, "the prediction itself is not scaled"
    written = np.asarray(Image.open(tmp_path / "slice07_seg.png"))
    np.testing.assert_array_equal(written, _prediction()[0].numpy().T * 255)
    back = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "slice07_prob.tif")))
    np.testing.assert_array_equal(back, _prediction(scale=0.75)[0].numpy().T)
