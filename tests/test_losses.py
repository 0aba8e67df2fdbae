"""Losses: the paper's weighted cross-entropy, the seed's BCE − IoU + 1, ignore-label masking (also for MONAI's
DiceCELoss) and skeleton recall: finite gradients, reduction to plain cross-entropy, ignored voxels without
influence, a broken membrane costing recall."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss

from monai_unet.losses import (
    BCEIoULoss,
    DiceCESkeletonRecallLoss,
    IgnoreLabelDiceCELoss,
    WeightedCrossEntropyLoss,
    tubed_skeleton,
)

IGNORE = 255


def _batch(channels: int, shape=(2, 1, 12, 10, 8), seed: int = 0):
    """Logits (B, C, *spatial) with gradients, labels (B, 1, *spatial) and an ignore mask covering ~30%."""
    generator = torch.Generator().manual_seed(seed)
    logits = (3 * torch.randn(shape[0], channels, *shape[2:], generator=generator)).requires_grad_()
    labels = torch.randint(0, max(channels, 2), shape, generator=generator)
    ignored = torch.rand(shape, generator=generator) < 0.3
    return logits, labels, ignored


def _losses_with_ignore():
    return {
        "weighted_ce": (WeightedCrossEntropyLoss(ignore_index=IGNORE), 3),
        "bce_iou": (BCEIoULoss(ignore_index=IGNORE), 1),
        "dice_ce_softmax": (IgnoreLabelDiceCELoss(IGNORE, to_onehot_y=True, softmax=True), 3),
        "dice_ce_sigmoid": (IgnoreLabelDiceCELoss(IGNORE, sigmoid=True), 1),
    }


@pytest.mark.parametrize("name", list(_losses_with_ignore()))
def test_gradients_exist_and_are_finite(name):
    loss_fn, channels = _losses_with_ignore()[name]
    logits, labels, ignored = _batch(channels)
    with torch.no_grad():
        logits[0, :, 0] = 60.0  # saturated logits must not produce inf/nan
    labels = torch.where(ignored, IGNORE, labels)
    loss = loss_fn(logits, labels)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(_losses_with_ignore()))
def test_an_ignored_voxels_prediction_does_not_change_the_loss(name):
    loss_fn, channels = _losses_with_ignore()[name]
    logits, labels, ignored = _batch(channels, seed=1)
    labels = torch.where(ignored, IGNORE, labels)
    before = loss_fn(logits, labels)
    before.backward()
    # The gradient at ignored voxels is zero ...
    assert (logits.grad * ignored).abs().max() == 0
    # ... and changing their predictions arbitrarily leaves the loss as it was.
    changed = torch.where(ignored.expand_as(logits), 50 * torch.randn_like(logits), logits.detach())
    assert torch.allclose(loss_fn(changed, labels), before.detach(), rtol=1e-6, atol=1e-7)
    # Counter-check: changing a counted voxel does change it.
    counted = (~ignored).nonzero()[0]
    moved = logits.detach().clone()
    moved[counted[0], 0, counted[2], counted[3], counted[4]] += 5.0  # one class logit (softmax ignores shifts)
    assert not torch.allclose(loss_fn(moved, labels), before.detach())


def test_ignore_label_dice_ce_equals_dice_ce_on_the_annotated_part():
    """Ignoring a slab equals cutting it away: the masked voxels contribute nothing to any sum."""
    logits, labels, _ = _batch(3, shape=(2, 1, 12, 10, 8), seed=2)
    labels[:, :, :4] = IGNORE
    for kwargs in ({"to_onehot_y": True, "softmax": True}, {"to_onehot_y": True, "softmax": True, "batch": True}):
        ours = IgnoreLabelDiceCELoss(IGNORE, **kwargs)(logits, labels)
        reference = DiceCELoss(**kwargs)(logits[:, :, 4:], labels[:, :, 4:])
        torch.testing.assert_close(ours, reference)


def test_weighted_cross_entropy_with_unit_weights_is_plain_cross_entropy():
    logits, labels, _ = _batch(3, seed=3)
    plain = F.cross_entropy(logits, labels[:, 0])
    ones = torch.ones_like(labels, dtype=torch.float32)
    torch.testing.assert_close(WeightedCrossEntropyLoss()(logits, labels, ones), plain)
    torch.testing.assert_close(WeightedCrossEntropyLoss()(logits, labels), plain)
    # Weights scale each voxel's term: E = mean_x w(x) (−log p_ℓ(x)(x)).
    weight = torch.rand(labels.shape) * 10
    expected = (F.cross_entropy(logits, labels[:, 0], reduction="none") * weight[:, 0]).mean()
    torch.testing.assert_close(WeightedCrossEntropyLoss()(logits, labels, weight), expected)
    # The weight map as the target's second channel (for SupervisedTrainer) gives the same value.
    packed = torch.cat([labels.float(), weight], dim=1)
    torch.testing.assert_close(WeightedCrossEntropyLoss(weight_in_target=True)(logits, packed), expected)


def test_bce_iou_matches_its_formula_and_vanishes_for_a_perfect_prediction():
    logits, labels, _ = _batch(1, seed=4)
    p, t = torch.sigmoid(logits), labels.float()
    iou = ((p * t).sum() + 1e-6) / (p.sum() + t.sum() - (p * t).sum() + 1e-6)
    expected = F.binary_cross_entropy(p, t) - iou + 1
    torch.testing.assert_close(BCEIoULoss()(logits, labels), expected)
    torch.testing.assert_close(BCEIoULoss(sigmoid=False)(p, labels), expected)
    perfect = torch.where(labels.bool(), 40.0, -40.0)
    assert BCEIoULoss()(perfect, labels).item() < 1e-6


def test_bad_shapes_are_refused():
    logits, labels, _ = _batch(3)
    with pytest.raises(ValueError, match="label indices"):
        WeightedCrossEntropyLoss()(logits, labels[:, :, :5])
    with pytest.raises(ValueError, match="ignore_index needs label indices"):
        IgnoreLabelDiceCELoss(IGNORE, softmax=True)(logits, F.one_hot(labels[:, 0], 3).movedim(-1, 1))


def _membranes(size: int = 48) -> torch.Tensor:
    """Labels (1, 1, size, size): a grid of 3-pixel membranes (class 1) around square cells (class 0)."""
    labels = torch.zeros(1, 1, size, size, dtype=torch.int64)
    for start in range(0, size, 16):
        labels[..., start : start + 3, :] = 1
        labels[..., :, start : start + 3] = 1
    return labels


def test_skeleton_recall_is_the_share_of_the_skeleton_the_prediction_misses():
    labels = _membranes()
    loss_fn = DiceCESkeletonRecallLoss([1], include_background=False, batch=True)
    confident = 20.0 * (torch.cat([1 - labels, labels], dim=1).float() - 0.5)  # logits of the truth itself
    base = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)
    assert loss_fn(confident, labels).item() == pytest.approx(base(confident, labels).item(), abs=1e-6)
    broken = confident.clone()
    broken[:, :, :, 20:28] = torch.tensor([10.0, -10.0])[:, None, None]  # a vertical gap: cells merge
    skeleton = tubed_skeleton(labels[:, 0].numpy(), [1])[0, 0]
    missed = skeleton[:, 20:28].sum() / skeleton.sum()
    recall_term = loss_fn(broken, labels).item() - base(broken, labels).item()
    assert recall_term == pytest.approx(float(missed), abs=1e-4)
    assert 0.05 < missed < 0.5


def test_skeleton_recall_gradients_and_an_empty_batch():
    labels = _membranes()
    logits = torch.randn(1, 2, 48, 48, requires_grad=True)
    DiceCESkeletonRecallLoss([1], include_background=False, batch=True)(logits, labels).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    background = torch.zeros_like(labels)
    with_skeleton = DiceCESkeletonRecallLoss([1], include_background=False, batch=True)(logits, background)
    plain = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)(logits, background)
    assert with_skeleton.item() == pytest.approx(plain.item())


def test_skeletons_of_an_anisotropic_volume_are_taken_slice_by_slice():
    ring = torch.zeros(1, 24, 24, 4, dtype=torch.int64)  # a myocardium-like ring in each of 4 thick slices
    yy, xx = torch.meshgrid(torch.arange(24), torch.arange(24), indexing="ij")
    radius = ((yy - 11.5) ** 2 + (xx - 11.5) ** 2).sqrt()
    ring[0][(radius > 6) & (radius < 9)] = 2
    sliced = tubed_skeleton(ring.numpy(), [2], slice_axis=2)[0, 0]
    assert all(sliced[..., z].sum() > 30 for z in range(4))  # a closed ring in every slice
    assert (sliced <= (ring[0] == 2).numpy()).all()  # never outside the class
    with pytest.raises(ValueError, match="beyond the network"):
        DiceCESkeletonRecallLoss([2], slice_axis=2)(torch.randn(1, 2, 24, 24, 4), ring[:, None])
