"""The inference configs run as MONAI Deploy's ``MonaiBundleInferenceOperator`` runs them: it reads the
``preprocessing`` and ``postprocessing`` Composes of ``configs/inference.json``, drops every transform whose class
name contains ``LoadImage`` or ``SaveImage`` (its ``DISALLOWED_TRANSFORMS``), loads the image itself and takes
``pred`` from the post-processed data. A deployed app must then get the label map on the input's grid and no file
written by the bundle: our writers live in the separate ``saving`` Compose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.transforms import Compose, LoadImaged

from monai_unet.io import SimpleITKReader
from monai_unet.io.overlay import SaveOverlayd
from monai_unet.io.save import SavePredictiond

ROOT = Path(__file__).resolve().parents[1]
DISALLOWED = ("LoadImage", "SaveImage")  # MonaiBundleInferenceOperator.DISALLOWED_TRANSFORMS


def _parser(bundle: Path, output_dir: Path, **overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_meta(str(bundle / "configs" / "metadata.json"))
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser.update({"bundle_root": str(bundle), "output_dir": str(output_dir), "device": "cpu", **overrides})
    return parser


def _as_deployed(compose: Compose) -> Compose:
    """Deploy's ``_filter_compose``: keep the transforms whose class name holds none of the disallowed words."""
    return Compose([t for t in compose.transforms if not any(word in type(t).__name__ for word in DISALLOWED)])


@pytest.mark.parametrize("bundle", ["em_membrane_segmentation", "brain_tumor_mri_segmentation"])
def test_postprocessing_holds_no_writer_and_saving_holds_them_all(tmp_path: Path, bundle: str) -> None:
    parser = _parser(ROOT / "bundles" / bundle, tmp_path, save_probabilities=True, save_overlays=True)
    post = parser.get_parsed_content("postprocessing")
    saving = parser.get_parsed_content("saving")
    writers = (SavePredictiond, SaveOverlayd)
    assert not [t for t in post.transforms if isinstance(t, writers)]
    assert sorted(type(t).__name__ for t in saving.transforms) == ["SaveOverlayd", "SavePredictiond", "SavePredictiond"]


def test_the_em_bundle_deployed_returns_labels_on_the_input_grid_and_writes_nothing(tmp_path: Path) -> None:
    bundle = ROOT / "bundles" / "em_membrane_segmentation"
    image = sorted((ROOT / "sample_data" / "isbi2012_em" / "images").iterdir())[0]
    parser = _parser(bundle, tmp_path / "never_written", tta_axes=[])
    network = parser.get_parsed_content("network")
    network.load_state_dict(torch.load(bundle / "models" / "model.pt", map_location="cpu", weights_only=True))
    network.eval()
    pre = _as_deployed(parser.get_parsed_content("preprocessing"))
    post = _as_deployed(parser.get_parsed_content("postprocessing"))
    inferer = parser.get_parsed_content("inferer")
    assert not [t for t in pre.transforms if isinstance(t, LoadImaged)], "Deploy loads the image itself"

    # what the operator does: its own LoadImaged, the filtered preprocessing, the inferer, the filtered post
    data = Compose([LoadImaged("image", reader=SimpleITKReader(), image_only=True), *pre.transforms])(
        {"image": str(image)}
    )
    with torch.no_grad():
        data["pred"] = inferer(data["image"][None], network)[0]
    data = post(data)
    pred = data["pred"]
    source = SimpleITKReader().get_data(SimpleITKReader().read(str(image)))[0]
    assert tuple(pred.shape) == (1, *source.shape)
    values = np.unique(pred.numpy())
    assert set(values.tolist()) <= {0.0, 1.0} and len(values) == 2, "membranes and cells both found"
    assert not (tmp_path / "never_written").exists() or not any((tmp_path / "never_written").iterdir())
