"""Inferers: overlap-tile / sliding-window inference and the eval-time fast path."""

from __future__ import annotations

__all__: list[str] = []
