"""InstanceNorm2d/3d: channels-last CPU inputs normalised per sample in their own layout, with the same values and
gradients as ``torch.nn.functional.instance_norm``; everything else takes the stock path."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from monai_unet.networks import InstanceNorm2d, InstanceNorm3d, UNet

LAYOUTS = {4: torch.channels_last, 5: torch.channels_last_3d}


def _norm(cls: type, channels: int) -> nn.Module:
    torch.manual_seed(0)
    norm = cls(channels, affine=True)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    return norm


def _forward_backward(norm: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.detach().requires_grad_()
    norm.zero_grad()
    y = norm(x)
    y.backward(grad)
    return y, x.grad, norm.weight.grad.clone(), norm.bias.grad.clone()


@pytest.mark.parametrize(("cls", "shape"), [(InstanceNorm2d, (3, 6, 20, 24)), (InstanceNorm3d, (2, 5, 12, 10, 6))])
def test_channels_last_matches_instance_norm_values_and_gradients(cls, shape):
    norm = _norm(cls, shape[1])
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, generator=generator) * 3 + 1
    grad = torch.randn(*shape, generator=generator)
    layout = LAYOUTS[len(shape)]
    ours = _forward_backward(norm, x.contiguous(memory_format=layout), grad.contiguous(memory_format=layout))
    reference = norm(x)  # contiguous: the stock path
    stock = _forward_backward(norm, x, grad)
    assert torch.equal(reference, stock[0])
    expected = F.instance_norm(x, weight=norm.weight, bias=norm.bias, eps=norm.eps)
    assert torch.allclose(stock[0], expected)
    assert ours[0].is_contiguous(memory_format=layout) and not ours[0].is_contiguous()
    assert ours[1].is_contiguous(memory_format=layout)
    for a, b in zip(ours, stock, strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), (a - b).abs().max()


def test_bfloat16_is_as_close_to_float32_as_the_stock_path():
    """In bfloat16 (the training precision) the per-sample path rounds no worse than instance_norm's own kernel."""
    norm = _norm(InstanceNorm3d, 8)
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(2, 8, 16, 16, 6, generator=generator) * 2 - 1
    grad = torch.randn(2, 8, 16, 16, 6, generator=generator)
    exact = _forward_backward(norm, x, grad)
    layout = torch.channels_last_3d
    ours = _forward_backward(
        norm, x.bfloat16().contiguous(memory_format=layout), grad.bfloat16().contiguous(memory_format=layout)
    )
    stock = _forward_backward(norm, x.bfloat16(), grad.bfloat16())
    assert ours[0].dtype == torch.bfloat16
    for a, b, e in zip(ours[:2], stock[:2], exact[:2], strict=True):
        assert (a.float() - e).abs().max() <= 1.5 * (b.float() - e).abs().max() + 1e-3


def test_parameters_and_state_dict_are_those_of_torch_instance_norm():
    ours, stock = InstanceNorm3d(4, affine=True), nn.InstanceNorm3d(4, affine=True)
    assert list(ours.state_dict()) == list(stock.state_dict())
    ours.load_state_dict(stock.state_dict())


def test_the_unet_trains_channels_last_with_the_contiguous_results():
    """A whole U-Net step (instance norm, bf16 autocast), channels-last against contiguous: same loss, same gradients
    to bfloat16 rounding, and the layout kept to the output."""
    torch.manual_seed(0)
    net = UNet(3, 1, 3, features=(4, 8, 16), padding="same", norm="instance", dropout=0.0)
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(2, 1, 16, 16, 8, generator=generator)
    results = []
    for layout in (torch.contiguous_format, torch.channels_last_3d):
        net.zero_grad()
        net.to(memory_format=layout)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = net(x.contiguous(memory_format=layout))
        loss = y.float().square().mean()
        loss.backward()
        assert y.is_contiguous(memory_format=layout)
        results.append((loss.detach(), [p.grad.clone() for p in net.parameters()]))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert torch.allclose(loss_a, loss_b, rtol=0.02)
    for a, b in zip(grads_a, grads_b, strict=True):
        assert torch.allclose(a, b, rtol=0.1, atol=0.05 * a.abs().max().item() + 1e-6)


def test_torchscript_takes_the_stock_path():
    torch.manual_seed(0)
    net = UNet(2, 1, 2, features=(4, 8), padding="same", norm="instance", dropout=0.0).eval()
    x = torch.randn(1, 1, 16, 16)
    assert torch.allclose(torch.jit.script(net)(x), net(x), atol=1e-5)
