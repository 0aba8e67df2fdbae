"""Label pictures: a grey mask stored as RGB(A) read as one channel, JPEG values snapped to the declared labels,
colour-coded maps refused; the same on real JPEG files and through the dictionary transform."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

from monai_unet.io import LoadScan
from monai_unet.transforms import PictureLabel, PictureLabeld
from monai_unet.transforms.picture_label import LOSSY_CHANNEL_SPREAD, picture_label


def _disc(size: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return np.where((yy - size / 2) ** 2 + (xx - size / 3) ** 2 < (size / 4) ** 2, 255, 0).astype(np.uint8)


def test_lossy_values_go_to_the_nearest_declared_value():
    label = np.array([[[0, 3, 100, 127, 128, 200, 255]]], dtype=np.uint8)
    np.testing.assert_array_equal(picture_label(label, [0, 255], lossy=True), [[[0, 0, 0, 0, 255, 255, 255]]])
    three = np.array([[[0, 40, 60, 90, 140, 200]]], dtype=np.int16)
    snapped = picture_label(three, [0, 100, 200], lossy=True)
    np.testing.assert_array_equal(snapped, [[[0, 0, 100, 100, 100, 200]]])
    assert snapped.dtype == np.int16
    fractions = np.array([[[0.0, 0.5, 1.0]]], dtype=np.float32)  # lossless grey: values and type as they are
    assert picture_label(fractions, [0, 1], lossy=False).dtype == np.float32
    np.testing.assert_array_equal(picture_label(fractions, [0, 1], lossy=False), fractions)


def test_colour_channels_must_agree():
    grey = _disc()[None]
    rgb = np.concatenate([grey] * 3)
    np.testing.assert_array_equal(picture_label(rgb, [0, 255], lossy=False), grey)
    rgba = np.concatenate([rgb, np.full_like(grey, 255)])  # an opaque alpha channel is ignored
    np.testing.assert_array_equal(picture_label(rgba, [0, 255], lossy=False), grey)
    off_by_one = rgb.copy()
    off_by_one[1, 0, 0] += 1
    with pytest.raises(ValueError, match="colour channels differ \\(by up to 1 levels\\)"):
        picture_label(off_by_one, [0, 255], lossy=False)  # lossless: exactly equal, or a colour map
    jittered = rgb.astype(np.int16) + np.random.default_rng(0).integers(-4, 5, rgb.shape)
    np.testing.assert_array_equal(picture_label(jittered.clip(0, 255), [0, 255], lossy=True), grey)
    red = np.concatenate([grey, np.zeros_like(grey), np.zeros_like(grey)])
    with pytest.raises(ValueError, match=r"by up to 255 levels.*colour-coded"):
        picture_label(red, [0, 255], lossy=True)
    assert LOSSY_CHANNEL_SPREAD < 255
    with pytest.raises(ValueError, match="1, 3 or 4 channels, this one 2"):
        picture_label(rgb[:2], [0, 255], lossy=False)


def test_a_real_rgb_jpeg_mask_reads_close_to_its_png(tmp_path):
    disc = _disc(96)
    Image.fromarray(np.stack([disc] * 3, axis=-1)).save(tmp_path / "mask.jpg", quality=75)
    loaded = LoadScan(dtype=None, ensure_channel_first=True)(str(tmp_path / "mask.jpg"))
    assert loaded.shape[0] == 3 and len(np.unique(loaded.numpy())) > 2  # JPEG left values between the classes
    grey = PictureLabel([0, 255], lossy=True)(loaded)
    assert isinstance(grey, MetaTensor) and grey.shape == (1, 96, 96)
    assert set(np.unique(grey.numpy())) == {0, 255}
    assert np.mean(grey.numpy()[0] != disc.T) < 0.01  # the edge moves by at most a pixel here and there
    torch.testing.assert_close(grey.affine, loaded.affine)


def test_the_dictionary_transform_names_the_file():
    label = MetaTensor(torch.zeros(3, 4, 4, dtype=torch.uint8), meta={"filename_or_obj": "/data/labels/case7.png"})
    label[0, 1, 1] = 255
    with pytest.raises(ValueError, match=r"/data/labels/case7\.png: its colour channels differ"):
        PictureLabeld("label", [0, 255])({"label": label})
    out = PictureLabeld("label", [0, 255], allow_missing_keys=True)({"image": torch.zeros(1, 4, 4)})
    assert "label" not in out
    with pytest.raises(ValueError, match="declared label values"):
        PictureLabel([], lossy=True)
