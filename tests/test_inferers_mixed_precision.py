"""MixedPrecisionInferer: the trainer's forward pass in bfloat16 (per ``precision``), float32 everywhere else."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from monai.engines import SupervisedTrainer
from monai.handlers import from_engine
from monai.losses import DiceCELoss

from monai_unet.inferers import MixedPrecisionInferer, bf16_supported, uses_bf16
from monai_unet.networks import UNet


def _net() -> UNet:
    torch.manual_seed(0)
    return UNet(2, 1, 3, features=(4, 8), padding="same", norm="instance", dropout=0.0)


def _conv_output_dtypes(net: torch.nn.Module) -> list[torch.dtype]:
    dtypes: list[torch.dtype] = []
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
    return dtypes


def test_fp32_is_the_plain_forward_pass():
    net, x = _net(), torch.randn(2, 1, 32, 32)
    assert torch.equal(MixedPrecisionInferer("fp32")(x, net), net(x))


def test_bf16_runs_the_convolutions_in_bfloat16_and_returns_float32():
    net, x = _net(), torch.randn(2, 1, 32, 32)
    reference = net(x)
    dtypes = _conv_output_dtypes(net)
    out = MixedPrecisionInferer("bf16")(x, net)
    assert out.dtype == torch.float32 and dtypes and set(dtypes) == {torch.bfloat16}
    assert torch.allclose(out, reference, rtol=0.05, atol=0.05 * reference.abs().max().item())


def test_a_deeply_supervised_network_gives_a_float32_list_in_training():
    torch.manual_seed(0)
    net = UNet(2, 1, 3, features=(4, 8, 16), padding="same", norm="instance", dropout=0.0, deep_supervision=1)
    outputs = MixedPrecisionInferer("bf16")(torch.randn(2, 1, 32, 32), net.train())
    assert [(o.dtype, tuple(o.shape)) for o in outputs] == [
        (torch.float32, (2, 3, 32, 32)),
        (torch.float32, (2, 3, 16, 16)),
    ]


def test_auto_follows_the_hardware():
    assert uses_bf16("auto", "cpu") == bf16_supported("cpu")
    assert not uses_bf16("fp32", "cpu") and uses_bf16("bf16", "cpu")
    with pytest.raises(ValueError, match="auto, bf16, fp32"):
        MixedPrecisionInferer("fp16")


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_a_real_trainer_keeps_float32_weights_and_learns(precision):
    """Two epochs of a MONAI SupervisedTrainer on one image: parameters, gradients and optimiser state stay float32,
    and the loss falls."""
    net = _net()
    image = torch.randn(1, 1, 32, 32)
    label = (image > 0).long() + (image > 1).long()
    data = [{"image": image[0], "label": label[0]}] * 4
    losses: list[float] = []
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=8,
        train_data_loader=torch.utils.data.DataLoader(data, batch_size=4),
        network=net,
        optimizer=optimizer,
        loss_function=DiceCELoss(to_onehot_y=True, softmax=True),
        inferer=MixedPrecisionInferer(precision),
    )
    loss_of = from_engine(["loss"], first=True)
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda engine: losses.append(float(loss_of(engine.state.output)))
    )
    trainer.run()
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in net.parameters())
    assert all(v.dtype == torch.float32 for s in optimizer.state.values() for v in s.values() if v.is_floating_point())
    assert losses[-1] < 0.8 * losses[0], losses


def test_bf16_on_the_cpu_runs_channels_last_with_the_same_parameters():
    """The network's convolution weights are converted in place (the optimiser's parameters stay the network's), the
    inputs on each call; the outputs equal a contiguous bf16 forward pass to rounding. float32 leaves both alone."""
    torch.manual_seed(0)
    net = UNet(3, 1, 3, features=(4, 8), padding="same", norm="instance", dropout=0.0)
    x = torch.randn(2, 1, 16, 16, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        contiguous = net(x).float()
    parameters = list(net.parameters())
    MixedPrecisionInferer("fp32")(x, net)
    assert all(p.is_contiguous() for p in net.parameters())
    out = MixedPrecisionInferer("bf16")(x, net)
    assert [id(p) for p in net.parameters()] == [id(p) for p in parameters]
    weights = [p for p in net.parameters() if p.dim() == 5]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last_3d) for p in weights)
    assert out.dtype == torch.float32 and out.is_contiguous(memory_format=torch.channels_last_3d)
    assert torch.allclose(out, contiguous, atol=0.02 * contiguous.abs().max().item())
