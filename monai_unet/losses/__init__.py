"""Losses: the paper's weighted cross-entropy, the seed's BCE-IoU, ignore-label masking."""

from __future__ import annotations

__all__: list[str] = []
