"""Eval-time fast path: BatchNorm folding is exact, the caller's network is untouched, bf16 keeps the labels."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import UNet as MonaiUNet
from torch import nn

from monai_unet.inferers import OverlapTileInferer, bf16_supported, fold_batch_norm, prepare_network
from monai_unet.networks import UNet


def _randomise_batch_norm(net: nn.Module) -> nn.Module:
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
    return net.eval()


def _count_batch_norms(net: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


@pytest.mark.parametrize(
    "make",
    [
        lambda: UNet(3, 1, 2, features=(4, 8, 16), padding="same", norm="batch", dropout=0.0),
        # MONAI's UNet: BatchNorm after convolutions and transposed convolutions, inside ADN blocks
        lambda: MonaiUNet(3, 1, 2, channels=(4, 8, 16), strides=(2, 2), num_res_units=2, norm="batch"),
    ],
)
def test_batch_norm_folding_is_exact_and_leaves_the_original_alone(make) -> None:
    torch.manual_seed(0)
    net = _randomise_batch_norm(make())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(2, 1, 16, 16, 16)
    folded = fold_batch_norm(net, x[:1])
    assert _count_batch_norms(net) > 0
    assert _count_batch_norms(folded) == 0  # every BatchNorm here follows a convolution
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), rtol=1e-4, atol=1e-5)
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key])


def test_training_mode_batch_norm_is_not_folded() -> None:
    net = UNet(2, 1, 2, features=(4, 8), padding="same", norm="batch", dropout=0.0).train()
    folded = fold_batch_norm(net, torch.randn(2, 1, 16, 16))
    assert _count_batch_norms(folded) == _count_batch_norms(net)


def test_prepared_network_returns_float32_in_channels_last_layout() -> None:
    net = UNet(3, 1, 2, features=(4, 8), padding="same", norm="batch", dropout=0.0).eval()
    x = torch.randn(1, 1, 8, 8, 8)
    prepared = prepare_network(net, x, strict_fp32=True)
    assert prepared.channels_last and not prepared.autocast_bf16
    conv = next(m for m in prepared.network.modules() if isinstance(m, nn.Conv3d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        y = prepared(x)
    assert y.dtype == torch.float32 and y.shape == (1, 2, 8, 8, 8)
    assert prepare_network(net, x).autocast_bf16 == bf16_supported("cpu")


@pytest.mark.skipif(not bf16_supported("cpu"), reason="this CPU has no native bfloat16 convolutions")
def test_bf16_fast_path_agrees_with_fp32_labels() -> None:
    torch.manual_seed(1)
    net = _randomise_batch_norm(MonaiUNet(3, 1, 2, channels=(8, 16, 32), strides=(2, 2), num_res_units=1, norm="batch"))
    image = torch.randn(1, 1, 48, 40, 36)
    common = {"roi_size": 24, "overlap": 0.5, "mode": "gaussian", "output": "labels"}
    fast = OverlapTileInferer(**common)(image, net)
    strict = OverlapTileInferer(**common, strict_fp32=True)(image, net)
    agreement = (fast == strict).float().mean().item()
    assert agreement >= 0.99


def test_onnxruntime_backend_matches_torch() -> None:
    pytest.importorskip("onnxruntime")
    torch.manual_seed(2)
    net = _randomise_batch_norm(MonaiUNet(3, 1, 2, channels=(4, 8, 16), strides=(2, 2), num_res_units=1, norm="batch"))
    image = torch.randn(1, 1, 20, 28, 17)
    common = {"roi_size": 16, "sw_batch_size": 3, "overlap": 0.5, "mode": "gaussian"}
    expected = OverlapTileInferer(**common, strict_fp32=True)(image, net)
    ours = OverlapTileInferer(**common, backend="onnxruntime")(image, net)
    assert (ours - expected).abs().max() <= 1e-4
