"""The fast path on a trained network and real data: the MRI bundle's 3D U-Net on the sample BRATS subject.

Ours: ``OverlapTileInferer`` with the default fast path (BatchNorm folding, channels-last, bf16 autocast where the
CPU has it); baseline: the same inferer with ``strict_fp32=True``. Both produce argmax labels over the subject's
preprocessed volume (RAS, 2 mm, cropped to the head, z-scored), 64³ tiles, overlap 0.5, Gaussian blending. The
figure that matters is the label agreement (issue: ≥ 99.9 % for a trained network on real data).
"""

from __future__ import annotations

from pathlib import Path

import torch
from monai.bundle import ConfigParser

from benchmarks.harness import Comparison, compare
from monai_unet.inferers import OverlapTileInferer

TITLE = "Fast path (bf16) vs strict fp32 on the trained MRI bundle, real BRATS subject"

_BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "brain_tumor_mri_segmentation"


def run(quick: bool = False) -> list[Comparison]:
    parser = ConfigParser()
    parser.read_config(str(_BUNDLE / "configs" / "inference.json"))
    parser.read_meta(str(_BUNDLE / "configs" / "metadata.json"))
    parser["bundle_root"] = str(_BUNDLE)
    network = parser.get_parsed_content("network_def")
    network.load_state_dict(torch.load(_BUNDLE / "models" / "model.pt", map_location="cpu", weights_only=True))
    network.eval()
    case = parser.get_parsed_content("datalist")[0]
    image = parser.get_parsed_content("preprocessing")(case)["image"][None]
    roi = tuple(parser.get_parsed_content("roi_size"))
    settings = dict(roi_size=roi, sw_batch_size=4, overlap=0.5, mode="gaussian", output="labels")
    fast = OverlapTileInferer(**settings)
    strict = OverlapTileInferer(**settings, strict_fp32=True)
    with torch.inference_mode():
        labels_fast, labels_strict = fast(image, network), strict(image, network)
    agreement = (labels_fast == labels_strict).float().mean().item()
    tumour_fast, tumour_strict = int((labels_fast > 0).sum()), int((labels_strict > 0).sum())
    comparison = compare(
        f"MRI 3D U-Net, {case['case']} ({'×'.join(map(str, image.shape[2:]))} voxels, {'×'.join(map(str, roi))} tiles)",
        ("fast path (bf16)", lambda: fast(image, network)),
        ("strict fp32", lambda: strict(image, network)),
        warmup=0 if quick else 1,
        repeats=1 if quick else 3,
        extra={
            "labels agree": f"{100 * agreement:.3f} %",
            "tumour voxels fast / fp32": f"{tumour_fast} / {tumour_strict}",
        },
    )
    return [comparison]
