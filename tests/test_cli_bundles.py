"""``monai-unet bundles`` lists the shipped bundles from their metadata; ``--bundle NAME`` finds them by name from
any folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monai_unet.cli.bundle import open_bundle
from monai_unet.errors import UsageError

REPO = Path(__file__).resolve().parents[1]


def test_the_listing_is_the_shipped_bundles_metadata(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "monai_unet.cli.main", "bundles", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    listed = {item["name"]: item for item in json.loads(result.stdout)}
    shipped = sorted(p.name for p in (REPO / "bundles").iterdir() if (p / "configs" / "metadata.json").is_file())
    assert sorted(listed) == shipped
    for name, item in listed.items():
        meta = json.loads((REPO / "bundles" / name / "configs" / "metadata.json").read_text())
        channels = meta["network_data_format"]["inputs"]["image"]["channel_def"]
        classes = meta["network_data_format"]["outputs"]["pred"]["channel_def"]
        assert item["version"] == meta["version"] and item["terms"] == meta["intended_use"]
        assert item["inputs"] == [channels[k] for k in sorted(channels, key=int)]
        assert item["classes"] == [v for k, v in sorted(classes.items(), key=lambda kv: int(kv[0])) if k != "0"]
    text = subprocess.run(
        [sys.executable, "-m", "monai_unet.cli.main", "bundles"], capture_output=True, text=True, check=True
    ).stdout
    assert all(f"{name}  (version" in text for name in shipped)


def test_a_shipped_bundle_opens_by_name_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert open_bundle("em_membrane_segmentation").root == REPO / "bundles" / "em_membrane_segmentation"
    with pytest.raises(UsageError, match=r"no such bundle folder \(shipped bundles, usable by name: .*em_membrane"):
        open_bundle("em_membrane")


@pytest.mark.parametrize("name", ["em_membrane_segmentation", "brain_tumor_mri_segmentation"])
def test_shipped_bundles_meet_the_cli_contract_by_monais_own_check(name, tmp_path):
    """The contract the CLI relies on, saved as a MONAI properties file, passes ``check_properties``."""
    from monai.bundle import ConfigWorkflow

    from monai_unet.cli.bundle import INFERENCE_PROPERTIES

    properties = tmp_path / "properties.json"
    properties.write_text(json.dumps({"infer": INFERENCE_PROPERTIES}))
    bundle = REPO / "bundles" / name
    workflow = ConfigWorkflow(
        config_file=str(bundle / "configs" / "inference.json"),
        meta_file=str(bundle / "configs" / "metadata.json"),
        workflow_type="infer",
        properties_path=str(properties),
        bundle_root=str(bundle),
        output_dir=str(tmp_path / "out"),
    )
    workflow.initialize()
    assert workflow.check_properties() in (None, [])
    open_bundle(bundle).check_inference_contract(also=["ckpt_path", "tta_axes", "save_overlays"])


def test_a_bundle_without_a_contract_id_is_refused_before_reading(tmp_path):
    from tiny_bundle import write_tiny_bundle

    bundle = write_tiny_bundle(tmp_path / "bundle")
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    del config["output_postfix"]
    (bundle / "configs" / "inference.json").write_text(json.dumps(config))
    scan = tmp_path / "scan.nii.gz"
    scan.write_bytes(b"not read: the contract is checked first")
    result = subprocess.run(
        [sys.executable, "-m", "monai_unet.cli.main", "segment", scan, "-o", tmp_path / "o.nii.gz", "--bundle", bundle],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "lacks the id(s) output_postfix" in result.stderr.splitlines()[-1]
