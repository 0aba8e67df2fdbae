"""FoldedConv3d: nn.Conv3d's results and gradients, its plain path outside CPU training, and the UNet built on it."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from monai_unet.networks import FoldedConv3d, UNet
from monai_unet.networks.flat_axis import FlatAwareConvTranspose3d

FOLDED_BACKWARD = "_Conv3dFoldedWeightGradBackward"


def _pair(c_in: int, c_out: int, kernel, padding, bias: bool = True, dtype=torch.float64):
    torch.manual_seed(0)
    folded = FoldedConv3d(c_in, c_out, kernel, padding=padding, bias=bias).to(dtype)
    plain = nn.Conv3d(c_in, c_out, kernel, padding=padding, bias=bias).to(dtype)
    plain.load_state_dict(folded.state_dict())
    return folded, plain


def _grads(module: nn.Module, x: torch.Tensor, grad_out: torch.Tensor | None = None):
    x = x.detach().clone().requires_grad_()
    y = module(x)
    if grad_out is None:
        grad_out = torch.randn_like(y, generator=torch.Generator().manual_seed(1))
    y.backward(grad_out)
    grads = {"input": x.grad, **{name: p.grad for name, p in module.named_parameters()}}
    module.zero_grad(set_to_none=True)
    return y.detach(), grads, grad_out


def _assert_same_as_conv3d(folded, plain, x, rtol, atol):
    y_folded, g_folded, grad_out = _grads(folded, x)
    y_plain, g_plain, _ = _grads(plain, x, grad_out)
    assert torch.equal(y_folded, y_plain)  # the forward pass is conv3d itself, and so is the input gradient
    assert torch.equal(g_folded["input"], g_plain["input"])
    assert g_folded.keys() == g_plain.keys()
    for name in g_plain:
        scale = g_plain[name].abs().max().item()
        torch.testing.assert_close(g_folded[name], g_plain[name], rtol=rtol, atol=atol * scale, msg=name)


CASES = [
    # kernel, padding, spatial input shape (odd, even and single-slice z; a single slice under a kernel of 1 along
    # it is convolved in 2D instead, tests/test_networks_flat_axis.py)
    ((3, 3, 3), "same", (6, 5, 7)),
    ((3, 3, 3), "same", (6, 5, 4)),
    ((3, 3, 3), "same", (4, 6, 1)),
    ((3, 3, 3), "valid", (6, 5, 5)),
    ((3, 3, 3), "valid", (7, 5, 4)),
    ((3, 3, 1), "same", (6, 5, 3)),
    ((3, 3, 1), "same", (6, 5, 2)),
    ((3, 3, 1), "valid", (6, 5, 2)),
    ((1, 3, 3), "same", (3, 5, 6)),
    ((1, 1, 1), "same", (4, 5, 3)),
    ((1, 1, 1), "valid", (4, 5, 2)),
]


@pytest.mark.parametrize("kernel,padding,spatial", CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_output_and_gradients_equal_conv3d_float64(kernel, padding, spatial, bias):
    numeric = tuple(k // 2 for k in kernel) if padding == "same" else 0
    folded, plain = _pair(3, 4, kernel, numeric, bias=bias)
    folded.train()
    x = torch.randn(2, 3, *spatial, dtype=torch.float64)
    y = folded(x.requires_grad_())
    assert type(y.grad_fn).__name__ == FOLDED_BACKWARD  # the folded weight gradient is what is being checked
    _assert_same_as_conv3d(folded, plain, x, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel,padding,spatial", CASES[:8])
def test_output_and_gradients_equal_conv3d_float32(kernel, padding, spatial):
    folded, plain = _pair(5, 6, kernel, padding, dtype=torch.float32)  # string paddings, as nn.Conv3d takes them
    x = torch.randn(2, 5, *spatial)
    _assert_same_as_conv3d(folded.train(), plain.train(), x, rtol=1e-4, atol=1e-5)


def test_non_contiguous_input_and_batch_of_one():
    folded, plain = _pair(4, 3, (3, 3, 3), 1)
    x = torch.randn(1, 4, 6, 5, 4, dtype=torch.float64).contiguous(memory_format=torch.channels_last_3d)
    _assert_same_as_conv3d(folded.train(), plain.train(), x, rtol=1e-10, atol=1e-12)
    x = torch.randn(2, 6, 5, 4, 4, dtype=torch.float64).transpose(1, 4)  # channels from a transposed view
    _assert_same_as_conv3d(folded.train(), plain.train(), x, rtol=1e-10, atol=1e-12)


def test_only_the_weight_gradient_when_the_input_needs_none():
    folded, plain = _pair(2, 3, (3, 3, 3), 1)
    x = torch.randn(2, 2, 5, 5, 5, dtype=torch.float64)  # no requires_grad: the first layer of a network
    folded(x).sum().backward()
    plain(x).sum().backward()
    torch.testing.assert_close(folded.weight.grad, plain.weight.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(folded.bias.grad, plain.bias.grad, rtol=1e-10, atol=1e-12)


def _plain_path(folded: FoldedConv3d, x: torch.Tensor) -> bool:
    """Whether ``folded(x)`` ran the plain conv3d: no folded backward node in its autograd graph."""
    nodes, names = [folded(x).grad_fn], set()
    while nodes:
        node = nodes.pop()
        if node is not None:
            names.add(type(node).__name__)
            nodes += [next_node for next_node, _ in node.next_functions]
    return FOLDED_BACKWARD not in names


def test_plain_conv3d_outside_cpu_training():
    folded, _ = _pair(3, 4, (3, 3, 1), (1, 1, 0), dtype=torch.float32)
    x = torch.randn(2, 3, 6, 5, 4)
    reference = F.conv3d(x, folded.weight, folded.bias, padding=(1, 1, 0))
    folded.eval()
    assert _plain_path(folded, x) and torch.equal(folded(x), reference)
    with torch.no_grad():
        assert torch.equal(folded.train()(x), reference)
    with torch.inference_mode():
        assert torch.equal(folded(x), reference)
    assert _plain_path(folded.train(), x.requires_grad_()) is False
    folded.weight.requires_grad_(False)  # frozen: the input gradient is all there is, conv3d's is fast
    assert _plain_path(folded, x)
    folded.weight.requires_grad_(True)
    folded.fold_weight_grad = False
    assert _plain_path(folded, x)
    folded.fold_weight_grad = True
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert _plain_path(folded, x)
    assert _plain_path(folded, x[0])  # unbatched (C, X, Y, Z), which nn.Conv3d accepts


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_plain_conv3d_on_cuda():
    folded, _ = _pair(3, 4, (3, 3, 3), 1, dtype=torch.float32)
    assert _plain_path(folded.cuda().train(), torch.randn(2, 3, 6, 5, 4, device="cuda", requires_grad=True))


def test_drop_in_for_nn_conv3d():
    folded = FoldedConv3d(3, 4, kernel_size=(3, 3, 1), padding="same", bias=False)
    plain = nn.Conv3d(3, 4, kernel_size=(3, 3, 1), padding="same", bias=False)
    assert isinstance(folded, nn.Conv3d)
    assert folded.state_dict().keys() == plain.state_dict().keys()
    folded.load_state_dict(plain.state_dict(), strict=True)
    plain.load_state_dict(folded.state_dict(), strict=True)
    assert folded.fold_padding == (1, 1, 0) and folded.fold_axis == 2
    assert FoldedConv3d(2, 2, 3, padding="valid").fold_padding == (0, 0, 0)
    assert FoldedConv3d(2, 2, 3, padding=1).fold_axis == 0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(stride=2), "stride=\\(2, 2, 2\\)"),
        (dict(dilation=(1, 1, 2)), "dilation=\\(1, 1, 2\\)"),
        (dict(groups=2), "groups=2"),
        (dict(padding=1, padding_mode="reflect"), "padding_mode='reflect'"),
    ],
)
def test_unsupported_configurations_raise(kwargs, message):
    with pytest.raises(ValueError, match=f"FoldedConv3d supports stride 1.*{message}"):
        FoldedConv3d(2, 2, 3, **kwargs)
    with pytest.raises(ValueError, match="padding='same' needs odd kernel sizes"):
        FoldedConv3d(2, 2, (3, 3, 2), padding="same")


def test_scripting_and_tracing_see_a_plain_convolution(tmp_path):
    folded, _ = _pair(2, 3, (3, 3, 3), 1, dtype=torch.float32)
    x = torch.randn(2, 2, 5, 4, 3)
    scripted = torch.jit.script(folded.train())
    assert "conv3d" in scripted.code or "_conv_forward" in scripted.code
    assert torch.equal(scripted(x), folded(x))
    scripted(x.requires_grad_()).sum().backward()  # training a scripted module works (plain path)
    traced = torch.jit.trace(folded.train(), x)
    assert "PythonOp" not in str(traced.graph)
    assert torch.equal(traced(x), folded(x))


# ------------------------------------------------------------------------------------------------------------ UNet
def _with_plain_convs(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with every FoldedConv3d replaced by an nn.Conv3d holding the same parameters."""
    net = copy.deepcopy(net)
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, FoldedConv3d):
                plain = nn.Conv3d(
                    child.in_channels, child.out_channels, child.kernel_size, padding=child.padding,
                    bias=child.bias is not None,
                ).to(child.weight.dtype)  # fmt: skip
                plain.load_state_dict(child.state_dict())
                setattr(module, name, plain)
    return net


UNET_CASES = [
    dict(),  # the paper's: valid padding, up-convolutions, no norm (biases)
    dict(padding="same", norm="batch", upsample="interp"),
    dict(padding="same", norm="instance", pools=[[2, 2, 1], [2, 2, 2]], kernels=[[3, 3, 1], [3, 3, 3], [1, 3, 3]]),
]


@pytest.mark.parametrize("kwargs", UNET_CASES)
def test_unet_trains_exactly_like_with_conv3d(kwargs):
    torch.manual_seed(0)
    net = UNet(3, 2, 3, features=(3, 4, 5), dropout=0.0, **kwargs).double().train()
    plain = _with_plain_convs(net)
    assert not any(isinstance(m, FoldedConv3d) for m in plain.modules())
    assert plain.state_dict().keys() == net.state_dict().keys()
    x = torch.randn(2, 2, *net.valid_input_shape((12, 12, 4)), dtype=torch.float64)
    y_folded, g_folded, grad_out = _grads(net, x)
    y_plain, g_plain, _ = _grads(plain, x, grad_out)
    torch.testing.assert_close(y_folded, y_plain, rtol=1e-12, atol=1e-12)
    for name in g_plain:
        scale = g_plain[name].abs().max().item()
        torch.testing.assert_close(g_folded[name], g_plain[name], rtol=1e-9, atol=1e-11 * scale, msg=name)


def test_unet_uses_folded_convolutions_for_its_3d_double_convolutions_only():
    net = UNet(3, 1, 2, features=(4, 8, 16), padding="same", upsample="interp")
    folded = [name for name, m in net.named_modules() if isinstance(m, FoldedConv3d)]
    assert len(folded) == 2 * 3 + 2 * 2  # two per level, two per decoder stage
    assert all(".conv." in name or name.startswith("down.") for name in folded)
    assert type(net.head) is nn.Conv3d and type(net.decoder[0].up[0]) is nn.Conv3d  # the 1×1 convolutions
    assert type(UNet(3, 1, 2, features=(4, 8)).decoder[0].up) is FlatAwareConvTranspose3d
    assert type(UNet(2, 1, 2, features=(4, 8)).decoder[0].up) is nn.ConvTranspose2d
    assert not any(isinstance(m, FoldedConv3d) for m in UNet(2, 1, 2, features=(4, 8)).modules())


def test_metatensor_input_trains_like_a_tensor():
    """MONAI's trainers pass MetaTensors; the folded backward must take them (it once failed in new_empty)."""
    from monai.data import MetaTensor

    torch.manual_seed(0)
    conv = FoldedConv3d(2, 3, 3, padding=1)
    plain = torch.nn.Conv3d(2, 3, 3, padding=1)
    plain.load_state_dict(conv.state_dict())
    x = torch.randn(2, 2, 6, 5, 4)
    conv(MetaTensor(x)).sum().backward()
    plain(x).sum().backward()
    torch.testing.assert_close(conv.weight.grad, plain.weight.grad, rtol=1e-4, atol=1e-5)
