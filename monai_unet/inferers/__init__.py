"""Inferers: overlap-tile / sliding-window inference, the eval-time fast path, and the training forward pass in
bfloat16 where the hardware supports it."""

from __future__ import annotations

from monai_unet.inferers.fast_path import PreparedNetwork, bf16_supported, fold_batch_norm, prepare_network
from monai_unet.inferers.mixed_precision import PRECISIONS, MixedPrecisionInferer, uses_bf16
from monai_unet.inferers.overlap_tile import OverlapTileInferer, TiledPrediction
from monai_unet.inferers.slab_output import BACKGROUND_LOGIT

__all__ = [
    "BACKGROUND_LOGIT",
    "PRECISIONS",
    "MixedPrecisionInferer",
    "OverlapTileInferer",
    "PreparedNetwork",
    "TiledPrediction",
    "bf16_supported",
    "fold_batch_norm",
    "prepare_network",
    "uses_bf16",
]
