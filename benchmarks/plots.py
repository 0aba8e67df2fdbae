"""Line plots of validation curves as PNG, drawn with PIL (no plotting library is needed)."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = (720, 420)
MARGIN = (60, 20, 20, 40)  # left, top, right, bottom, pixels
PALETTE = [(200, 40, 40), (40, 90, 200), (40, 150, 60), (150, 90, 20)]


def line_plot(
    curves: dict[str, list[tuple[float, float]]], x_max: float, x_label: str, title: str, path: Path, x_ticks: int = 10
) -> None:
    """One line per curve, points ``(x, y)`` with ``y`` in [0, 1] and ``x`` in [0, ``x_max``], labelled at the top
    left; about ``x_ticks`` ticks along x, 1, 2 or 5 times a power of ten apart."""
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = MARGIN
    width, height = SIZE[0] - left - right, SIZE[1] - top - bottom

    def xy(x: float, y: float) -> tuple[float, float]:
        return left + width * x / x_max, top + height * (1.0 - y)

    draw.rectangle([left, top, left + width, top + height], outline="black")
    for tick in range(0, 11, 2):
        y = top + height * (1 - tick / 10)
        draw.line([left - 4, y, left, y], fill="black")
        draw.text((8, y - 6), f"{tick / 10:.1f}", fill="black")
    raw = max(x_max / x_ticks, 1.0)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    for tick in range(0, int(x_max) + 1, step):
        x = left + width * tick / x_max
        draw.line([x, top + height, x, top + height + 4], fill="black")
        draw.text((x - 6, top + height + 8), str(tick), fill="black")
    draw.text((left + width // 2 - 4 * len(x_label), SIZE[1] - 16), x_label, fill="black")
    for index, (name, curve) in enumerate(curves.items()):
        colour = PALETTE[index % len(PALETTE)]
        points = [xy(x, y) for x, y in curve]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        draw.text((left + 10, top + 8 + 14 * index), name, fill=colour)
    draw.text((left + width - 8 * len(title), top + 8), title, fill="black")
    image.save(path)
