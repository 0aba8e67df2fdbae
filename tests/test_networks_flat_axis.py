"""Convolutions over an axis one voxel thick run as 2D ones: same results and gradients as the 3D operators, the
2D path taken only where it applies, and a U-Net on slices stored as 3D files equal to itself on the plain path."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from monai_unet.networks import FoldedConv3d, UNet
from monai_unet.networks import flat_axis as flat_module
from monai_unet.networks.flat_axis import FlatAwareConvTranspose3d, flat_axis


@pytest.fixture
def calls_2d(monkeypatch) -> dict[str, int]:
    """Counts the 2D convolutions the module under test runs."""
    counts = {"conv2d": 0, "conv_transpose2d": 0}

    def counting(name):
        real = getattr(F, name)

        def wrapper(*args, **kwargs):
            counts[name] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(flat_module.F, "conv2d", counting("conv2d"))
    monkeypatch.setattr(flat_module.F, "conv_transpose2d", counting("conv_transpose2d"))
    return counts


def _outputs_and_grads(module: nn.Module, x: torch.Tensor):
    x = x.detach().clone().requires_grad_()
    y = module(x)
    y.backward(torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape))
    grads = [x.grad] + [p.grad for p in module.parameters()]
    module.zero_grad(set_to_none=True)
    return y.detach(), grads


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_conv_on_a_flat_axis_equals_conv3d(axis, calls_2d):
    kernel, shape = [3, 3, 3], [2, 3, 9, 8, 7]
    kernel[axis], shape[axis + 2] = 1, 1
    torch.manual_seed(0)
    ours = FoldedConv3d(3, 5, kernel, padding="same").double()
    plain = nn.Conv3d(3, 5, kernel, padding="same").double()
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(shape, dtype=torch.float64)
    y, grads = _outputs_and_grads(ours, x)
    y_plain, grads_plain = _outputs_and_grads(plain, x)
    assert calls_2d["conv2d"] == 1 and y.shape == y_plain.shape
    torch.testing.assert_close(y, y_plain)
    for got, expected in zip(grads, grads_plain, strict=True):
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("axis", [0, 2])
def test_transposed_conv_on_a_flat_axis_equals_conv_transpose3d(axis, calls_2d):
    factors, shape = [2, 2, 2], [2, 4, 5, 6, 3]
    factors[axis], shape[axis + 2] = 1, 1
    torch.manual_seed(0)
    ours = FlatAwareConvTranspose3d(4, 3, factors, stride=factors).double()
    plain = nn.ConvTranspose3d(4, 3, factors, stride=factors).double()
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(shape, dtype=torch.float64)
    y, grads = _outputs_and_grads(ours, x)
    y_plain, grads_plain = _outputs_and_grads(plain, x)
    assert calls_2d["conv_transpose2d"] == 1 and y.shape[axis + 2] == 1
    torch.testing.assert_close(y, y_plain)
    for got, expected in zip(grads, grads_plain, strict=True):
        torch.testing.assert_close(got, expected)


def test_the_2d_path_only_where_the_axis_stays_one_voxel_thick(calls_2d):
    x = torch.randn(1, 2, 6, 6, 1)
    assert flat_axis(x, (3, 3, 1), (1, 1, 0)) == 2
    assert flat_axis(x, (3, 3, 3), (1, 1, 1)) is None  # a 3-kernel with padding spans the zero padding: 3D
    assert flat_axis(x, (3, 3, 1), (1, 1, 1)) is None  # padded along it: the output is 3 voxels thick
    assert flat_axis(torch.randn(1, 2, 6, 6, 2), (3, 3, 1), (1, 1, 0)) is None
    FoldedConv3d(2, 2, (3, 3, 3), padding="same")(x)
    FlatAwareConvTranspose3d(2, 2, (2, 2, 2), stride=(2, 2, 2))(x)
    assert calls_2d == {"conv2d": 0, "conv_transpose2d": 0}


def test_unet_on_slices_stored_as_3d_matches_its_plain_path(calls_2d, monkeypatch):
    """The planner's network for (x, y, 1) slices: every convolution and up-convolution takes the 2D path, with the
    outputs and gradients of the plain 3D operators (the same network with the 2D paths switched off)."""
    torch.manual_seed(0)
    kwargs = dict(padding="same", norm="instance", dropout=0.0, pools=[[2, 2, 1]] * 2, kernels=[[3, 3, 1]] * 3)
    net = UNet(3, 1, 2, features=(4, 8, 16), **kwargs).double()
    x = torch.randn(2, 1, 16, 12, 1, dtype=torch.float64)
    y, grads = _outputs_and_grads(net, x)
    convs = sum(isinstance(m, FoldedConv3d) for m in net.modules())
    ups = sum(isinstance(m, FlatAwareConvTranspose3d) for m in net.modules())
    assert calls_2d == {"conv2d": convs, "conv_transpose2d": ups} and convs >= 10 and ups == 2
    monkeypatch.setattr("monai_unet.networks.folded_conv.flat_axis", lambda *args, **kwargs: None)
    monkeypatch.setattr(FlatAwareConvTranspose3d, "_flat", lambda self, x: None)
    y_plain, grads_plain = _outputs_and_grads(net, x)
    assert calls_2d == {"conv2d": convs, "conv_transpose2d": ups}  # no further 2D call on the plain path
    torch.testing.assert_close(y, y_plain)
    for got, expected in zip(grads, grads_plain, strict=True):
        torch.testing.assert_close(got, expected)


def test_torchscript_compiles_the_plain_path_with_the_same_results():
    """TorchScript drops the 2D branch: the scripted network runs the 3D operators, to float rounding the same; the
    up-convolution's plain path keeps ``output_size``."""
    torch.manual_seed(0)
    kwargs = dict(padding="same", norm="instance", dropout=0.0, pools=[[2, 2, 1]] * 2, kernels=[[3, 3, 1]] * 3)
    net = UNet(3, 1, 2, features=(4, 8, 16), **kwargs).eval()
    x = torch.randn(1, 1, 16, 12, 1)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(net)(x), net(x), rtol=1e-4, atol=1e-5)
    up = FlatAwareConvTranspose3d(2, 3, (2, 2, 2), stride=(2, 2, 2))
    plain = nn.ConvTranspose3d(2, 3, (2, 2, 2), stride=(2, 2, 2))
    plain.load_state_dict(up.state_dict())
    x = torch.randn(1, 2, 5, 4, 3)
    assert torch.equal(up(x, output_size=[11, 9, 7]), plain(x, output_size=[11, 9, 7]))
