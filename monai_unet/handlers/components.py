"""Whether keeping only the largest connected component of a class helps: measured on every validation.

nnU-Net decides its post-processing after training by comparing validation Dice with and without removing all but
the largest component of each class. This handler measures both on every validation run, per class, and adds them
to the evaluator's metrics (``val_dice_<c>`` and ``val_dice_lcc_<c>``), so the validation history holds the
comparison at the best epoch and the decision can be made from it when training ends
(:func:`monai_unet.plan.record_training`), at no extra inference cost.

A case without class ``c`` scores 1 for ``c`` when nothing is predicted as ``c`` and 0 otherwise (MONAI's
``compute_dice(ignore_empty=False)``), so that removing a false-positive component counts as a gain. These per-class
columns are therefore not the ``val_mean_dice`` that selects the model, which leaves such cases out (a dataset with
classes absent from its validation cases shows 1.0 for them in ``validation_history.csv``).
"""

from __future__ import annotations

import torch
from ignite.engine import Engine, Events
from monai.metrics import compute_dice
from monai.transforms import KeepLargestConnectedComponent

__all__ = ["ComponentChoice"]


class ComponentChoice:
    """Per-class validation Dice with and without keeping the largest connected component.

    Attach to the evaluator before the handler that reads its metrics (e.g. :class:`ValidationHistory`).

    Args:
        num_classes: output classes, background included; classes ``1 .. num_classes - 1`` are measured.
        pred_key: key of the one-hot prediction ``(C, *spatial)`` in each item of ``engine.state.output``.
        label_key: key of the one-hot ground truth ``(C, *spatial)``.
        prefix: metric name prefix.
    """

    def __init__(
        self, num_classes: int, pred_key: str = "pred", label_key: str = "label", prefix: str = "val_dice"
    ) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must count the background and at least one class, got {num_classes}")
        self.num_classes = num_classes
        self.pred_key = pred_key
        self.label_key = label_key
        self.prefix = prefix
        self._keep = {
            c: KeepLargestConnectedComponent(applied_labels=[c], is_onehot=False) for c in range(1, num_classes)
        }
        self._sums = torch.zeros(2, num_classes)
        self._count = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._update)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._publish)

    def _reset(self, engine: Engine) -> None:
        self._sums.zero_()
        self._count = 0

    def _update(self, engine: Engine) -> None:
        for item in engine.state.output:
            pred = torch.as_tensor(item[self.pred_key]).detach().cpu()
            label = torch.as_tensor(item[self.label_key]).detach().cpu()
            labels = pred.argmax(0, keepdim=True)
            raw = compute_dice(pred[None], label[None], include_background=True, ignore_empty=False)[0]
            kept = torch.empty_like(raw)
            kept[0] = raw[0]
            for c, keep in self._keep.items():
                mask = torch.as_tensor(keep(labels) == c).float()  # (1, *spatial)
                kept[c] = compute_dice(mask[None], label[c : c + 1][None], ignore_empty=False)[0, 0]
            self._sums[0] += torch.nan_to_num(raw.float(), nan=1.0)
            self._sums[1] += torch.nan_to_num(kept.float(), nan=1.0)
            self._count += 1

    def _publish(self, engine: Engine) -> None:
        if self._count == 0:
            return
        means = self._sums / self._count
        for c in range(1, self.num_classes):
            engine.state.metrics[f"{self.prefix}_{c}"] = float(means[0, c])
            engine.state.metrics[f"{self.prefix}_lcc_{c}"] = float(means[1, c])
