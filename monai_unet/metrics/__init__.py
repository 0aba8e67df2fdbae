"""Metrics not in MONAI: the ISBI 2012 pixel and Rand errors (Dice, HD95 come from MONAI)."""

from __future__ import annotations

__all__: list[str] = []
