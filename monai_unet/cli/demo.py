"""``monai-unet demo``: the paper's network on a real ISBI 2012 EM slice from ``sample_data/``.

Shows the size arithmetic the rest of the package relies on: the slice is mirror-extended by the network's margin
(the paper's overlap-tile border treatment), passed through the valid-padding U-Net, and the output covers the
slice exactly. The network is untrained here; the bundles ship trained weights.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from monai_unet.networks import UNet

__all__ = ["register", "run"]

DEFAULT_IMAGE = Path(__file__).resolve().parents[2] / "sample_data" / "isbi2012_em" / "images" / "00.png"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the paper's U-Net on a sample EM slice and print its size arithmetic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  monai-unet demo --output-dir outputs/demo",
    )
    parser.add_argument(
        "--image", type=Path, default=DEFAULT_IMAGE, help="2D grey image (PNG/TIFF); default: %(default)s"
    )
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/demo"), help="where to write the summary")
    parser.add_argument("--seed", type=int, default=0, help="seed for the (untrained) weights")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> dict:
    """Run the demo; returns and writes a JSON summary (shapes in pixels, time in seconds)."""
    if not args.image.is_file():
        raise FileNotFoundError(f"{args.image}: no such image file")
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(args.image))).astype(np.float32)
    if image.ndim != 2:
        raise ValueError(f"{args.image}: expected a 2D grey image, got array shape {image.shape}")
    image = (image - image.mean()) / max(float(image.std()), 1e-6)

    torch.manual_seed(args.seed)
    net = UNet(spatial_dims=2, in_channels=1, out_channels=2).eval()
    # Mirror-extend by the margin, then up to the next size every level can take (overlap-tile border treatment).
    tile_in = net.valid_input_shape([s + 2 * net.margin for s in image.shape])
    pad = [(t - s) for t, s in zip(tile_in, image.shape, strict=True)]
    before = [net.margin for _ in pad]
    after = [p - net.margin for p in pad]
    x = torch.from_numpy(image)[None, None]
    x = F.pad(x, (before[1], after[1], before[0], after[0]), mode="reflect")

    start = time.perf_counter()
    with torch.inference_mode():
        logits = net(x)
    seconds = time.perf_counter() - start
    covered = logits[..., : image.shape[0], : image.shape[1]]

    summary = {
        "image": str(args.image),
        "image_shape": list(image.shape),
        "network": "UNet(spatial_dims=2, in_channels=1, out_channels=2) (paper configuration, untrained)",
        "parameters": sum(p.numel() for p in net.parameters()),
        "margin_per_side": net.margin,
        "input_tile_shape": list(x.shape),
        "output_shape": list(logits.shape),
        "output_covering_image": list(covered.shape),
        "forward_seconds": round(seconds, 3),
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    target = args.output_dir / "summary.json"
    fd, tmp = tempfile.mkstemp(dir=args.output_dir, prefix=".summary.", suffix=".json.part")
    with os.fdopen(fd, "w") as f:
        json.dump(summary, f, indent=2)
    os.replace(tmp, target)
    for key, value in summary.items():
        print(f"{key:>24}: {value}")
    print(f"{'written':>24}: {target}")
    return summary
