"""Inferers: overlap-tile / sliding-window inference and the eval-time fast path."""

from __future__ import annotations

from monai_unet.inferers.fast_path import PreparedNetwork, bf16_supported, fold_batch_norm, prepare_network
from monai_unet.inferers.overlap_tile import OverlapTileInferer, TiledPrediction
from monai_unet.inferers.slab_output import BACKGROUND_LOGIT

__all__ = [
    "BACKGROUND_LOGIT",
    "OverlapTileInferer",
    "PreparedNetwork",
    "TiledPrediction",
    "bf16_supported",
    "fold_batch_norm",
    "prepare_network",
]
