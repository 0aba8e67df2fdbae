"""OverlapTileInferer: exact overlap-tile for valid U-Nets, MONAI-equal sliding window for same nets, slab labels."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.inferers import sliding_window_inference
from monai.networks.nets import UNet as MonaiUNet

from monai_unet.inferers import BACKGROUND_LOGIT, OverlapTileInferer
from monai_unet.networks import UNet


def _valid_net(spatial_dims: int, norm: str | None = None) -> UNet:
    torch.manual_seed(0)
    net = UNet(spatial_dims, 1, 3, features=(4, 8, 16), padding="valid", norm=norm, dropout=0.0)
    if norm == "batch":  # non-trivial running statistics, so that eval-mode BatchNorm (and its folding) matters
        for module in net.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _whole_image_forward(net: UNet, image: np.ndarray) -> torch.Tensor:
    """One forward pass over the image mirrored by the margin (plus what the net needs on the far side)."""
    m = net.margin
    spatial = image.shape[2:]
    padded = [net.geometry.valid_size_at_least(s + 2 * m) for s in spatial]
    pads = [(0, 0), (0, 0)] + [(m, p - s - m) for s, p in zip(spatial, padded, strict=True)]
    with torch.no_grad():
        out = net(torch.from_numpy(np.pad(image, pads, mode="reflect")))
    return out[(slice(None), slice(None), *(slice(0, s) for s in spatial))]


@pytest.mark.parametrize(
    ("spatial", "roi", "norm"),
    [
        ((37, 53), 44, None),  # odd sizes, not divisible by the output tile
        ((101, 67), (60, 52), "batch"),  # anisotropic tiles
        ((9, 5), 44, None),  # image smaller than one output tile
        ((23, 29, 19), (60, 64, 52), "batch"),  # 3D, 2 × 2 × 2 tiles
    ],
)
def test_valid_net_tiled_equals_whole_image(spatial: tuple[int, ...], roi, norm: str | None) -> None:
    net = _valid_net(len(spatial), norm).double()  # float64: the comparison tests tiling, not conv rounding
    image = np.random.default_rng(1).normal(size=(1, 1, *spatial))
    reference = _whole_image_forward(net, image)
    for fast in (False, True):
        inferer = OverlapTileInferer(roi_size=roi, sw_batch_size=2, fast=fast, strict_fp32=True)
        tiled = inferer(torch.from_numpy(image), net)
        assert tiled.shape == reference.shape
        assert (tiled.double() - reference).abs().max() <= 1e-5


def test_valid_net_float32_tiles_agree_with_whole_image() -> None:
    net = _valid_net(2)
    image = np.random.default_rng(2).normal(size=(1, 1, 61, 47)).astype(np.float32)
    tiled = OverlapTileInferer(roi_size=44, strict_fp32=True)(torch.from_numpy(image), net)
    reference = _whole_image_forward(net, image)
    assert (tiled - reference).abs().max() <= 1e-4 * (1 + reference.abs().max())


def _same_net(spatial_dims: int) -> UNet:
    torch.manual_seed(3)
    return UNet(spatial_dims, 1, 3, features=(4, 8, 16), padding="same", norm="batch", dropout=0.0).eval()


@pytest.mark.parametrize(
    ("shape", "roi", "overlap"),
    [
        ((2, 1, 45, 70), (16, 24), 0.4),
        ((1, 1, 10, 70), (16, 24), 0.25),  # smaller than the tile along one axis: MONAI's constant padding
        ((1, 1, 21, 30, 17), (8, 16, 12), 0.5),
    ],
)
@pytest.mark.parametrize("mode", ["constant", "gaussian"])
def test_same_net_equals_monai_sliding_window(shape, roi, overlap: float, mode: str) -> None:
    net = _same_net(len(shape) - 2).double()
    image = torch.from_numpy(np.random.default_rng(4).normal(size=shape))
    expected = sliding_window_inference(image, roi, 3, net, overlap=overlap, mode=mode)
    ours = OverlapTileInferer(roi, sw_batch_size=3, overlap=overlap, mode=mode, strict_fp32=True)(image, net)
    tolerance = 1e-5 if mode == "constant" else 1e-4
    assert ours.shape == expected.shape
    assert (ours.double() - expected).abs().max() <= tolerance


def test_monai_network_is_served_as_same_padding() -> None:
    torch.manual_seed(5)
    net = MonaiUNet(3, 1, 2, channels=(4, 8, 16), strides=(2, 2), num_res_units=1, norm="batch").eval()
    image = torch.randn(1, 1, 24, 40, 20)
    expected = sliding_window_inference(image, (16, 16, 16), 2, net, overlap=0.5, mode="gaussian")
    ours = OverlapTileInferer((16, 16, 16), 2, overlap=0.5, mode="gaussian", strict_fp32=True)(image, net)
    assert (ours - expected).abs().max() <= 1e-4


@pytest.mark.parametrize("slab_axis", [-1, 0])
def test_slab_finalised_labels_equal_argmax_of_full_probabilities(tmp_path, slab_axis: int) -> None:
    net = _same_net(3)
    image = torch.randn(1, 1, 24, 20, 33)
    common = {"roi_size": (16, 16, 16), "overlap": 0.5, "mode": "gaussian", "strict_fp32": True}
    full = OverlapTileInferer(**common, output="probabilities")(image, net)
    result = OverlapTileInferer(
        **common, output="labels", slab_axis=slab_axis, keep_probabilities="memmap", memmap_dir=tmp_path
    ).predict(image, net)
    assert result.output.dtype == torch.uint8
    assert result.output.shape == (1, 1, 24, 20, 33)
    assert torch.equal(result.output[:, 0].long(), full.argmax(dim=1))
    # the probabilities went to a real .npy file that numpy reads back
    assert result.probabilities_file is not None and result.probabilities_file.parent.parent == tmp_path
    stored = np.load(result.probabilities_file)
    assert stored.dtype == np.float16
    np.testing.assert_allclose(stored.astype(np.float32), full.numpy(), atol=1e-3)
    fp16 = OverlapTileInferer(**common, output="labels", keep_probabilities="float16").predict(image, net)
    assert fp16.probabilities.dtype == torch.float16
    assert (fp16.probabilities.float() - full).abs().max() <= 1e-3


def test_valid_net_slab_labels_equal_argmax_of_logits() -> None:
    net = _valid_net(2)
    image = torch.randn(1, 1, 95, 130)
    logits = OverlapTileInferer(60, strict_fp32=True)(image, net)
    labels = OverlapTileInferer(60, strict_fp32=True, output="labels")(image, net)
    assert torch.equal(labels[:, 0].long(), logits.argmax(dim=1))


def test_metatensor_metadata_is_kept() -> None:
    net = _same_net(2)
    affine = torch.diag(torch.tensor([0.5, 0.7, 1.0, 1.0], dtype=torch.float64))
    image = MetaTensor(torch.randn(1, 1, 40, 33), affine=affine, meta={"filename_or_obj": "case_001.nii.gz"})
    out = OverlapTileInferer(16, output="labels")(image, net)
    assert isinstance(out, MetaTensor)
    assert torch.equal(out.affine, affine)
    assert out.meta["filename_or_obj"] == "case_001.nii.gz"


def test_mirroring_averages_flipped_predictions() -> None:
    net = _same_net(2).double()
    image = torch.from_numpy(np.random.default_rng(6).normal(size=(1, 1, 32, 48)))  # exactly one tile
    with torch.no_grad():
        expected = sum(net(image.flip(dims)).flip(dims) for dims in [(), (2,), (3,), (2, 3)]) / 4
        plain = net(image)
    ours = OverlapTileInferer((32, 48), strict_fp32=True, mirror_axes=(0, 1))(image, net)
    assert (ours - expected).abs().max() <= 1e-5
    assert (ours - plain).abs().max() > 1e-3  # mirroring did change the prediction


def test_skipped_background_tiles_get_class_zero() -> None:
    net = _same_net(2)
    image = torch.randn(1, 1, 64, 64)
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[:16, :16] = True  # only the first 16×16 tile holds foreground
    common = {"roi_size": 16, "overlap": 0.0, "strict_fp32": True}
    full = OverlapTileInferer(**common)(image, net)
    masked = OverlapTileInferer(**common).predict(image, net, foreground_mask=mask).output
    torch.testing.assert_close(masked[..., :16, :16], full[..., :16, :16])
    background = torch.tensor([0.0, BACKGROUND_LOGIT, BACKGROUND_LOGIT]).view(1, 3, 1)
    assert torch.equal(masked[..., 16:, :].flatten(2), background.expand(1, 3, 48 * 64))
    boxed = OverlapTileInferer(**common, output="labels").predict(image, net, bounding_box=[(0, 10), (0, 10)])
    assert int(boxed.output[..., 16:, :].max()) == 0 and int(boxed.output[..., 16:].max()) == 0
    threshold = OverlapTileInferer(**common, foreground_threshold=100.0, output="labels")(image, net)
    assert int(threshold.max()) == 0  # nothing exceeds 100: every tile skipped, all background


def test_roi_is_corrected_to_the_nearest_valid_size(caplog) -> None:
    net = _valid_net(2)
    with caplog.at_level(logging.INFO, logger="monai_unet.inferers.overlap_tile"):
        out = OverlapTileInferer(61, strict_fp32=True)(torch.randn(1, 1, 50, 50), net)
    assert out.shape == (1, 3, 50, 50)
    assert "nearest valid size (60, 60)" in caplog.text


def _anisotropic_net(pools, features=(4, 8, 16)) -> UNet:
    torch.manual_seed(7)
    kernels = [[3, 3, 1] if 1 in step else [3, 3, 3] for step in pools] + [[3, 3, 3]]
    return UNet(
        3, 1, 3, features=features, padding="same", norm="batch", dropout=0.0, pools=pools, kernels=kernels
    ).eval()


def test_anisotropic_net_roi_is_corrected_per_axis() -> None:
    plan = [[2, 2, 1], [2, 2, 1], [2, 2, 2], [2, 2, 2]]  # depth 5, divisors (16, 16, 4)
    for pools, z_divisor, z_tile in [(plan[1:3], 2, 10), (plan[2:], 4, 12), (plan, 4, 12), (plan[:2], 1, 10)]:
        net = _anisotropic_net(pools, features=(2,) * (len(pools) + 1))
        assert net.divisors[2] == z_divisor
        tilings = OverlapTileInferer((160, 160, 10))._tilings(net, (300, 280, 17))
        assert tuple(t.input_tile for t in tilings) == (160, 160, z_tile)  # 10 is a tie between 8 and 12: up


def test_anisotropic_net_returns_the_input_shape_and_equals_monai(caplog) -> None:
    net = _anisotropic_net([[2, 2, 1], [2, 2, 2]]).double()  # divisors (4, 4, 2)
    image = torch.from_numpy(np.random.default_rng(8).normal(size=(1, 1, 21, 18, 7)))  # z = 7: not a multiple of 2
    with caplog.at_level(logging.INFO, logger="monai_unet.inferers.overlap_tile"):
        ours = OverlapTileInferer((16, 16, 5), sw_batch_size=2, overlap=0.5, strict_fp32=True)(image, net)
    assert "nearest valid size (16, 16, 6)" in caplog.text
    assert ours.shape == (1, 3, 21, 18, 7)
    expected = sliding_window_inference(image, (16, 16, 6), 2, net, overlap=0.5)
    assert (ours.double() - expected).abs().max() <= 1e-5
    labels = OverlapTileInferer((16, 16, 5), output="labels", fast=True)(image.float(), net.float())
    assert labels.shape == (1, 1, 21, 18, 7)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        OverlapTileInferer(16, mode="linear")
    with pytest.raises(ValueError, match="keep_probabilities"):
        OverlapTileInferer(16, output="logits", keep_probabilities="float16")
    with pytest.raises(ValueError, match="foreground_mask"):
        OverlapTileInferer(16).predict(torch.randn(1, 1, 20, 20), _same_net(2), foreground_mask=torch.ones(5, 5))


def test_inferer_builds_from_a_bundle_config() -> None:
    from monai.bundle import ConfigParser

    parser = ConfigParser(
        {
            "network": {
                "_target_": "monai_unet.networks.UNet",
                "spatial_dims": 2,
                "in_channels": 1,
                "out_channels": 2,
                "features": [4, 8],
                "padding": "same",
                "dropout": 0.0,
            },
            "inferer": {
                "_target_": "monai_unet.inferers.OverlapTileInferer",
                "roi_size": [16, 16],
                "sw_batch_size": 2,
                "overlap": 0.5,
                "mode": "gaussian",
                "output": "labels",
            },
        }
    )
    inferer, network = parser.get_parsed_content("inferer"), parser.get_parsed_content("network")
    assert isinstance(inferer, OverlapTileInferer)
    labels = inferer(torch.randn(1, 1, 30, 21), network.eval())
    assert labels.shape == (1, 1, 30, 21) and labels.dtype == torch.uint8
