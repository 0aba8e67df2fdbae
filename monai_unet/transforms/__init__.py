"""Transforms: preprocessing with exact inverses, the paper's augmentation and border weight map (array + dict)."""

from __future__ import annotations

__all__: list[str] = []
