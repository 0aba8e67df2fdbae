"""The U-Net as the paper specifies it: sizes, layers, parameters, translation exactness, export."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from monai.bundle import ConfigParser
from torch import nn

from monai_unet.networks import UNet, UNetGeometry

TINY = (2, 3, 4, 5, 6)  # channel widths small enough to forward many sizes quickly
# nnU-Net-style 3D plan for thick slices, depth 3: z is pooled only at the second step and convolved in-plane at the top
ANISO_POOLS = [[2, 2, 1], [2, 2, 2]]
ANISO_KERNELS = [[3, 3, 1], [3, 3, 3], [3, 3, 3]]


def _tiny(spatial_dims: int, depth: int, **kwargs) -> UNet:
    kwargs.setdefault("dropout", 0.0)
    return UNet(spatial_dims, 1, 2, features=TINY[:depth], **kwargs).eval()


def _conv_layers(net: nn.Module) -> list[nn.Module]:
    kinds = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    return [m for m in net.modules() if isinstance(m, kinds)]


# ------------------------------------------------------------------------------------------------ the paper's numbers
def test_paper_configuration_numbers():
    net = UNet(spatial_dims=2, in_channels=1, out_channels=2)
    assert net.output_shape((572, 572)) == (388, 388)
    assert net.margin == 92
    assert len(_conv_layers(net)) == 23
    assert sum(p.numel() for p in net.parameters()) == 31_030_658
    with torch.inference_mode():
        assert net.eval()(torch.zeros(1, 1, 572, 572)).shape == (1, 2, 388, 388)


def test_paper_dropout_sits_at_the_end_of_the_contracting_path():
    net = UNet(2, 1, 2)
    with_dropout = [i for i, block in enumerate(net.down) if any(isinstance(m, nn.Dropout) for m in block)]
    assert with_dropout == [3, 4]
    assert not any(isinstance(m, nn.Dropout) for m in net.decoder.modules())
    assert not any(isinstance(m, nn.Dropout) for m in UNet(2, 1, 2, dropout=0.0).modules())


def test_he_normal_initialisation():
    torch.manual_seed(0)
    net = UNet(2, 1, 2)
    conv = net.down[3][2]  # 512 → 512 3×3: N = 9 · 512 incoming connections
    assert isinstance(conv, nn.Conv2d)
    expected = math.sqrt(2.0 / (9 * 512))
    assert conv.weight.std().item() == pytest.approx(expected, rel=0.01)
    up = net.decoder[0].up  # 1024 → 512 2×2 stride 2: each output unit sees 1024 inputs
    assert up.weight.std().item() == pytest.approx(math.sqrt(2.0 / 1024), rel=0.01)
    assert all(float(m.bias.detach().abs().max()) == 0 for m in _conv_layers(net))


# ------------------------------------------------------------------------------------------------ size arithmetic
def _pool_input_sizes(net: UNet, x: torch.Tensor) -> list[tuple[int, ...]]:
    """Spatial sizes that reach each max pooling, recorded by a hook on an un-checked (scripted-path) forward."""
    seen: list[tuple[int, ...]] = []
    handles = [
        pool.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape[2:]))) for pool in net.pools[1:]
    ]
    try:
        net._check_input = lambda _x: None  # bypass the size check to watch what the layers receive
        net(x)
    except RuntimeError:
        seen.append((0,))  # a layer could not run at all: the size is invalid
    finally:
        for handle in handles:
            handle.remove()
        del net._check_input
    return seen


@pytest.mark.parametrize("depth", [2, 3, 4, 5])
@pytest.mark.parametrize("padding,upsample", [("valid", "deconv"), ("valid", "interp"), ("same", "deconv")])
def test_size_arithmetic_matches_a_real_forward_2d(depth, padding, upsample):
    net = _tiny(2, depth, padding=padding, upsample=upsample)
    geometry = net.geometry
    for size in range(1, 140):
        out = geometry.output_size(size)
        x = torch.zeros(1, 1, size, 2 ** (depth - 1) if padding == "same" else geometry.smallest_valid_size())
        if out is None:
            with pytest.raises(ValueError, match="does not fit this U-Net"):
                net(x)
            sizes = _pool_input_sizes(net, x)
            assert any(s[0] % 2 or s[0] < 2 for s in sizes), f"size {size} was called invalid but every level fits"
        else:
            with torch.no_grad():
                y = net(x)
            assert y.shape[2] == out == net.output_shape(x.shape[2:])[0]
            assert all(s[0] % 2 == 0 for s in _pool_input_sizes(net, x))
            assert size - out == 2 * net.margin


@pytest.mark.parametrize("depth", [2, 3, 4])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_size_arithmetic_matches_a_real_forward_3d_anisotropic(depth, padding):
    net = _tiny(3, depth, padding=padding)
    for min_shape in [(1, 1, 1), (30, 17, 9), (45, 33, 20)]:
        shape = net.valid_input_shape(min_shape)
        with torch.no_grad():
            y = net(torch.zeros(1, 1, *shape))
        assert tuple(y.shape[2:]) == net.output_shape(shape)
        assert net.output_shape((1, 1, *shape)) == (1, 2, *y.shape[2:])


@pytest.mark.parametrize("depth", [2, 3, 4, 5])
@pytest.mark.parametrize("padding,upsample", [("valid", "deconv"), ("valid", "interp"), ("same", "interp")])
def test_valid_input_shape_is_the_smallest_fit(depth, padding, upsample):
    geometry = UNetGeometry(depth, padding, upsample)
    net = _tiny(2, depth, padding=padding, upsample=upsample)
    for wanted in [1, 7, 64, 100, 257]:
        got = net.valid_input_shape((wanted, wanted))[0]
        assert got >= wanted and geometry.output_size(got) is not None
        assert all(geometry.output_size(n) is None for n in range(wanted, got))
    # consecutive valid sizes are one full down-sampling factor apart
    first = geometry.smallest_valid_size()
    assert geometry.valid_size_at_least(first + 1) == first + geometry.divisor


def test_misfit_message_names_nearest_sizes_below_and_above():
    net = UNet(2, 1, 2)
    with pytest.raises(ValueError, match=r"570 along spatial axis 0 .* 556 or 572"):
        net.output_shape((570, 572))
    with pytest.raises(ValueError, match=r"10 along spatial axis 1 .* the smallest valid size is 188"):
        net(torch.zeros(1, 1, 572, 10))


# ------------------------------------------------------------------------------------------ translation exactness
@pytest.mark.parametrize(
    "spatial_dims,depth,upsample,norm",
    [
        (2, 3, "deconv", None),
        (2, 4, "interp", None),
        (2, 3, "deconv", "batch"),
        (3, 3, "deconv", None),
        (3, 2, "interp", "batch"),
    ],
)
def test_valid_mode_is_translation_exact(spatial_dims, depth, upsample, norm):
    torch.manual_seed(1)
    net = _tiny(spatial_dims, depth, upsample=upsample, norm=norm)
    if norm == "batch":  # give the running statistics non-trivial values
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    step = net.geometry.divisor
    smallest = net.geometry.smallest_valid_size()
    big = tuple(smallest + k * step for k in (3, 2, 4)[:spatial_dims])  # anisotropic, all valid
    crop = tuple(b - 2 * step for b in big)
    offset = (step, 2 * step, step)[:spatial_dims]  # shifts of whole down-sampling steps
    x = torch.randn(1, 1, *big)
    window = tuple(slice(o, o + c) for o, c in zip(offset, crop, strict=True))
    with torch.no_grad():
        whole = net(x)
        part = net(x[(..., *window)])
    out_window = tuple(slice(o, o + s) for o, s in zip(offset, part.shape[2:], strict=True))
    assert (part - whole[(..., *out_window)]).abs().max().item() <= 1e-5


# ----------------------------------------------------------------------------------- training and construction
def test_every_parameter_receives_a_gradient():
    torch.manual_seed(0)
    anisotropic = dict(padding="same", upsample="interp", pools=[[2, 1], [2, 2]], kernels=[[3, 1], [3, 3], [1, 3]])
    for kwargs in [dict(), dict(upsample="interp", norm="batch"), dict(padding="same", norm="instance"), anisotropic]:
        net = UNet(2, 2, 3, features=(4, 8, 16), dropout=0.5, **kwargs).train()
        x = torch.randn(2, 2, *net.valid_input_shape((40, 40)))
        net(x).square().mean().backward()
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, f"{name} got a zero gradient ({kwargs})"


def test_seeded_construction_is_deterministic():
    def build() -> dict[str, torch.Tensor]:
        torch.manual_seed(42)
        return UNet(3, 1, 2, features=(4, 8, 16), norm="batch").state_dict()

    a, b = build(), build()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(norm="group"), "norm must be one of"),
        (dict(features=(64,)), "at least 2 levels"),
        (dict(spatial_dims=4), "spatial_dims must be 2 or 3"),
        (dict(padding="full"), "padding must be one of"),
        (dict(upsample="nearest"), "upsample must be one of"),
        (dict(dropout=1.0), "dropout must be in"),
        (dict(features=(8, 0)), "channel counts must be positive"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    args = dict(spatial_dims=2, in_channels=1, out_channels=2) | kwargs
    with pytest.raises(ValueError, match=message):
        UNet(**args)


def test_bad_input_tensors_raise_clear_errors():
    net = _tiny(2, 2)
    shape = net.valid_input_shape((20, 20))
    with pytest.raises(ValueError, match="expected 1 input channels, got 3"):
        net(torch.zeros(1, 3, *shape))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 1, H, W\)"):
        net(torch.zeros(1, *shape))


def test_norm_names_are_case_insensitive_and_norms_drop_the_conv_bias():
    net = UNet(3, 1, 2, features=(4, 8), norm="Instance")
    assert any(isinstance(m, nn.InstanceNorm3d) and m.affine for m in net.modules())
    assert all(m.bias is None for m in _conv_layers(net.down))


# ------------------------------------------------------------------------------------------ configs and export
def test_usable_from_a_bundle_config():
    config = {
        "network_def": {
            "_target_": "monai_unet.networks.UNet",
            "spatial_dims": 3,
            "in_channels": 2,
            "out_channels": 4,
            "features": [4, 8, 16],
            "padding": "same",
            "norm": "batch",
        }
    }
    net = ConfigParser(config).get_parsed_content("network_def")
    assert isinstance(net, UNet) and net.output_shape((16, 16, 8)) == (16, 16, 8)


@pytest.mark.parametrize(
    "spatial_dims,kwargs",
    [(2, dict()), (2, dict(upsample="interp", norm="batch")), (3, dict(padding="same", norm="instance"))],
)
def test_torchscript_matches_eager(spatial_dims, kwargs, tmp_path):
    torch.manual_seed(0)
    net = UNet(spatial_dims, 1, 2, features=(4, 8, 16), **kwargs).eval()
    x = torch.randn(1, 1, *net.valid_input_shape((24,) * spatial_dims))
    scripted = torch.jit.script(net)
    scripted.save(str(tmp_path / "net.ts"))
    loaded = torch.jit.load(str(tmp_path / "net.ts"))
    traced = torch.jit.trace(net, x)
    with torch.no_grad():
        reference = net(x)
        for other in (scripted, loaded, traced):
            assert (other(x) - reference).abs().max().item() <= 1e-5


@pytest.mark.parametrize(
    "spatial_dims,kwargs",
    [
        (2, dict()),
        (3, dict(upsample="interp", norm="batch")),
        (3, dict(padding="same", upsample="interp", pools=ANISO_POOLS, kernels=ANISO_KERNELS)),
        (3, dict(padding="same", norm="batch", pools=ANISO_POOLS, kernels=ANISO_KERNELS)),
    ],
)
def test_onnx_export_matches_eager(spatial_dims, kwargs, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    net = UNet(spatial_dims, 1, 2, features=(4, 8, 16), **kwargs).eval()
    x = torch.randn(1, 1, *net.valid_input_shape((20,) * spatial_dims))
    path = tmp_path / "net.onnx"
    torch.onnx.export(net, (x,), str(path), input_names=["image"], output_names=["pred"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        reference = net(x).numpy()
    assert onnx_out.shape == reference.shape
    assert abs(onnx_out - reference).max() <= 1e-5


def test_geometry_margin_formula_agrees_with_walking_sizes():
    for depth, padding, upsample in itertools.product(range(2, 7), ("valid", "same"), ("deconv", "interp")):
        geometry = UNetGeometry(depth, padding, upsample)
        size = geometry.smallest_valid_size()
        for k in range(4):
            n = size + k * geometry.divisor
            assert geometry.output_size(n) == n - 2 * geometry.margin


# ---------------------------------------------------------------------------------------- anisotropic (nnU-Net) plans
def _aniso(**kwargs) -> UNet:
    kwargs.setdefault("dropout", 0.0)
    kwargs.setdefault("padding", "same")
    kwargs.setdefault("pools", ANISO_POOLS)
    kwargs.setdefault("kernels", ANISO_KERNELS)
    return UNet(3, 1, 2, features=(4, 8, 16), **kwargs).eval()


@pytest.mark.parametrize("upsample", ["deconv", "interp"])
def test_anisotropic_network_layers_and_output_shape(upsample):
    torch.manual_seed(0)
    net = _aniso(upsample=upsample)
    assert net.pool_factors == ((2, 2, 1), (2, 2, 2))
    assert net.kernel_sizes == ((3, 3, 1), (3, 3, 3), (3, 3, 3))
    assert net.divisors == (4, 4, 2)
    assert [g.poolings for g in net.axis_geometries] == [2, 2, 1]
    assert net.margin == 0 and net.geometry.divisor == 4
    # encoder: the level's kernel with k // 2 zero padding; pooling kernel = stride = the step's factors
    top = net.down[0][0]
    assert top.kernel_size == (3, 3, 1) and top.padding == (1, 1, 0)
    assert net.down[0][2].kernel_size == (3, 3, 1)
    assert net.down[1][0].kernel_size == (3, 3, 3) and net.down[1][0].padding == (1, 1, 1)
    assert isinstance(net.pools[0], nn.Identity)
    assert [tuple(p.kernel_size) for p in net.pools[1:]] == [(2, 2, 1), (2, 2, 2)]
    assert [tuple(p.stride) for p in net.pools[1:]] == [(2, 2, 1), (2, 2, 2)]
    # decoder[0] undoes step 1 (into level 1), decoder[1] undoes step 0 and convolves with the top level's kernel
    assert net.decoder[1].conv[0].kernel_size == (3, 3, 1)
    if upsample == "deconv":
        assert net.decoder[0].up.kernel_size == (2, 2, 2) and net.decoder[0].up.stride == (2, 2, 2)
        assert net.decoder[1].up.kernel_size == (2, 2, 1) and net.decoder[1].up.stride == (2, 2, 1)
    else:
        assert net.decoder[1].up[1].scale_factor == (2.0, 2.0, 1.0)
    with torch.no_grad():
        for shape in [(32, 32, 4), (12, 8, 2), (16, 20, 6)]:
            y = net(torch.randn(1, 1, *shape))
            assert tuple(y.shape) == (1, 2, *shape) == net.output_shape((1, 1, *shape))


def test_anisotropic_network_refuses_sizes_off_its_per_axis_grid():
    net = _aniso()
    with pytest.raises(ValueError, match=r"size 5 along spatial axis 2 .* multiples of 2.* 4 or 6"):
        net(torch.zeros(1, 1, 32, 32, 5))
    with pytest.raises(ValueError, match=r"size 30 along spatial axis 0 .* multiples of 4.* 28 or 32"):
        net.output_shape((30, 32, 4))
    assert net.valid_input_shape((30, 17, 5)) == (32, 20, 6)
    assert net.valid_input_shape(1) == (4, 4, 2)
    # the arithmetic agrees with what the layers do along the sparsely pooled axis
    for z in range(1, 11):
        x = torch.zeros(1, 1, 8, 8, z)
        if net.axis_geometries[2].output_size(z) is None:
            with pytest.raises(ValueError, match="does not fit this U-Net"):
                net(x)
        else:
            with torch.no_grad():
                assert net(x).shape[2:] == (8, 8, z)
            assert all(s[2] % 2 == 0 for s in _pool_input_sizes(net, x)[1:])  # z is pooled at the second step


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(padding="valid", pools=ANISO_POOLS), r"pools other than the default .* need padding='same'"),
        (dict(padding="valid", kernels=ANISO_KERNELS), r"kernels other than the default .* need padding='same'"),
        (dict(pools=[[2, 2, 1]]), r"pools needs 2 entries \(one per pooling step.* got 1 entries"),
        (dict(kernels=ANISO_KERNELS[:2]), r"kernels needs 3 entries \(one per level.* got 2 entries"),
        (dict(pools=[[2, 2, 1], [2, 2]]), r"pools\[1\] must be a list of 3 values, each 1 or 2"),
        (dict(pools=[[2, 2, 4], [2, 2, 2]]), r"pools\[0\] values must each be 1 or 2"),
        (dict(kernels=[[3, 3, 5], [3, 3, 3], [3, 3, 3]]), r"kernels\[0\] values must each be 1 or 3"),
        (dict(pools=2), "pools must be a list of 2 entries"),
    ],
)
def test_bad_anisotropic_arguments_raise_clear_errors(kwargs, message):
    kwargs = dict(padding="same") | kwargs
    with pytest.raises(ValueError, match=message):
        UNet(3, 1, 2, features=(4, 8, 16), **kwargs)


def test_default_pools_and_kernels_are_the_isotropic_network():
    explicit = UNet(3, 1, 2, features=(4, 8, 16), pools=[[2, 2, 2]] * 2, kernels=[[3, 3, 3]] * 3)  # valid is fine
    assert explicit.geometry == UNetGeometry(3) and explicit.axis_geometries == (UNetGeometry(3),) * 3
    assert explicit.divisors == (4, 4, 4)
    assert UNetGeometry(3, "same", poolings=None) == UNetGeometry(3, "same", poolings=2)
    assert UNetGeometry(5, "same", poolings=2).divisor == 4
    with pytest.raises(ValueError, match="valid padding needs a 2× pooling of every axis"):
        UNetGeometry(3, "valid", poolings=1)
    with pytest.raises(ValueError, match="poolings must be an int from 0 to depth - 1 = 2"):
        UNetGeometry(3, "same", poolings=3)


# Keys of UNet(3, 2, 2, features=(16, 32, 64, 128), padding="same", norm="batch"), recorded from the network before
# the anisotropic options existed: weights saved by earlier releases are loaded by these names.
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_BRAIN_KEYS = (
    [f"down.{lv}.{i}.weight" for lv in range(4) for i in (0, 3)]
    + [f"down.{lv}.{i}.{b}" for lv in range(4) for i in (1, 4) for b in _BN]
    + [f"decoder.{st}.up.{w}" for st in range(3) for w in ("weight", "bias")]
    + [f"decoder.{st}.conv.{i}.weight" for st in range(3) for i in (0, 3)]
    + [f"decoder.{st}.conv.{i}.{b}" for st in range(3) for i in (1, 4) for b in _BN]
    + ["head.weight", "head.bias"]
)


def test_default_state_dict_is_unchanged():
    net = UNet(3, 2, 2, features=(16, 32, 64, 128), padding="same", norm="batch")
    assert len(_BRAIN_KEYS) == 92
    assert set(net.state_dict()) == set(_BRAIN_KEYS)


def test_anisotropic_torchscript_matches_eager(tmp_path):
    torch.manual_seed(0)
    for kwargs in [dict(norm="batch"), dict(upsample="interp", norm="instance")]:
        net = _aniso(**kwargs)
        x = torch.randn(1, 1, 16, 12, 6)
        scripted = torch.jit.script(net)
        scripted.save(str(tmp_path / "net.ts"))
        loaded = torch.jit.load(str(tmp_path / "net.ts"))
        with torch.no_grad():
            reference = net(x)
            assert reference.shape == (1, 2, 16, 12, 6)
            for other in (scripted, loaded):
                assert (other(x) - reference).abs().max().item() <= 1e-5


def test_anisotropic_network_from_a_bundle_config():
    config = {
        "network_def": {
            "_target_": "monai_unet.networks.UNet",
            "spatial_dims": 3,
            "in_channels": 1,
            "out_channels": 4,
            "features": [4, 8, 16, 32, 64],
            "padding": "same",
            "pools": [[2, 2, 1], [2, 2, 1], [2, 2, 2], [2, 2, 2]],
            "kernels": [[3, 3, 1], [3, 3, 1], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
        }
    }
    net = ConfigParser(config).get_parsed_content("network_def")
    assert net.divisors == (16, 16, 4)
    assert net.output_shape((160, 160, 12)) == (160, 160, 12)
    assert net.valid_input_shape((150, 150, 9)) == (160, 160, 12)


def test_deep_supervision_returns_every_supervised_level_in_training_only(tmp_path):
    """Heads at levels 1 .. k: in training a list, full resolution first, each next level at its pooled size; in
    eval mode and in TorchScript the one full-resolution output, which is the list's first entry."""
    torch.manual_seed(0)
    net = UNet(3, 1, 2, features=(4, 8, 16, 32), padding="same", norm="instance", dropout=0.0, deep_supervision=2)
    x = torch.randn(2, 1, 16, 16, 8)
    outputs = net.train()(x)
    assert isinstance(outputs, list)
    assert [tuple(o.shape) for o in outputs] == [(2, 2, 16, 16, 8), (2, 2, 8, 8, 4), (2, 2, 4, 4, 2)]
    sum(o.mean() for o in outputs).backward()
    assert all(p.grad is not None for p in net.aux_heads.parameters()), "every head receives a gradient"
    net.eval()
    with torch.no_grad():
        reference = net(x)
        assert torch.is_tensor(reference) and reference.shape == (2, 2, 16, 16, 8)
        assert torch.equal(net._deeply_supervised(x)[0], reference)
        scripted = torch.jit.script(net.train())
        scripted.save(str(tmp_path / "net.ts"))
        loaded = torch.jit.load(str(tmp_path / "net.ts")).eval()
        assert (loaded(x) - reference).abs().max().item() <= 1e-5, "TorchScript keeps the one output"
    assert set(UNet(3, 2, 2, features=(16, 32, 64, 128), padding="same", norm="batch").state_dict()) == set(
        _BRAIN_KEYS
    ), "no heads, no new keys"


def test_anisotropic_deep_supervision_follows_the_pooling_factors():
    torch.manual_seed(0)
    outputs = _aniso(deep_supervision=1).train()(torch.randn(1, 1, 16, 12, 6))
    assert [tuple(o.shape) for o in outputs] == [(1, 2, 16, 12, 6), (1, 2, 8, 6, 6)]


@pytest.mark.parametrize("heads", [2, -1])
def test_bad_deep_supervision_is_refused(heads):
    with pytest.raises(ValueError, match="at most len\\(features\\) - 2 = 1"):
        _aniso(deep_supervision=heads)
    with pytest.raises(ValueError, match="padding='same'"):
        UNet(2, 1, 2, features=(4, 8, 16), padding="valid", deep_supervision=1)
