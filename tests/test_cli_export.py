"""``monai-unet export``, ``infer`` and ``--help``/``--version``, in-process on the tiny test bundle."""

from __future__ import annotations

import json
import shutil

import monai
import numpy as np
import onnxruntime
import pytest
import SimpleITK as sitk
import torch
from monai.data import load_net_with_metadata
from tiny_bundle import write_tiny_bundle

from monai_unet import __version__
from monai_unet.cli.bundle import open_bundle
from monai_unet.cli.export import load_bundle_network
from monai_unet.cli.main import main


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_tiny_bundle(tmp_path_factory.mktemp("export") / "bundle", channels=1)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_matches_the_eager_network(bundle, tmp_path, fmt, capsys):
    out = tmp_path / f"net.{fmt}"
    assert (
        main(["export", "--bundle", str(bundle), "--format", fmt, "-o", str(out), "--input-shape", "16", "32", "16"])
        == 0
    )
    assert "max |exported - eager|" in capsys.readouterr().err
    network = load_bundle_network(open_bundle(bundle))
    x = torch.randn(2, 1, 16, 32, 16, generator=torch.Generator().manual_seed(1))  # another batch size than exported
    with torch.inference_mode():
        eager = network(x).numpy()
    if fmt == "torchscript":
        loaded, metadata, extra = load_net_with_metadata(str(out), more_extra_files=("inference.json",))
        assert metadata["name"] == "tiny test bundle"  # MONAI's own reader of ckpt_export archives
        assert metadata["monai_version"] == monai.__version__
        assert json.loads(extra["inference.json"]) == json.loads((bundle / "configs" / "inference.json").read_text())
        with torch.inference_mode():
            exported = loaded(x).numpy()
    else:
        (exported,) = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
            None, {"image": x.numpy()}
        )
    np.testing.assert_allclose(exported, eager, atol=1e-4)


def test_export_refuses_weights_that_do_not_fit(bundle, tmp_path, capsys):
    wrong = tmp_path / "wrong.pt"
    torch.save({"head.weight": torch.zeros(1)}, wrong)
    assert (
        main(
            [
                "export",
                "--bundle",
                str(bundle),
                "--format",
                "onnx",
                "--checkpoint",
                str(wrong),
                "-o",
                str(tmp_path / "x.onnx"),
            ]
        )
        == 2
    )
    assert "wrong.pt: weights do not fit" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_infer_wrapper_runs_the_inference_config(bundle, sample_data, tmp_path):
    series = sample_data / "totalsegmentator_ct_dicom" / "series"
    datalist = json.dumps([{"image": str(series)}])
    assert main(["infer", "--bundle", str(bundle), "--output-dir", str(tmp_path / "o"), f"datalist={datalist}"]) == 0
    (written,) = (tmp_path / "o").rglob("*_seg.nii.gz")
    assert sitk.ReadImage(str(written)).GetSize() == (512, 512, 5)


def test_help_of_every_command_has_examples_and_version(capsys):
    for command in ("segment", "info", "train", "evaluate", "infer", "export", "plan"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        assert "example" in text, command
        assert "``" not in text and ":class:" not in text and ":mod:" not in text, f"Sphinx markup in {command} --help"
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"monai-unet {__version__}"


def test_override_without_equals_is_a_bad_argument(bundle, capsys):
    assert main(["train", "--bundle", str(bundle), "num_epochs"]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("num_epochs: an override must be written KEY=VALUE (e.g. max_epochs=5 or learning_rate=1e-4)")
    )


def test_unknown_override_id_is_refused_with_the_closest_id(bundle, tmp_path, capsys):
    """MONAI would add ``datalst`` as a new id that nothing reads and run on the default data: refuse it."""
    out = tmp_path / "o"
    assert main(["infer", "--bundle", str(bundle), "--output-dir", str(out), "datalst=[]"]) == 2
    assert capsys.readouterr().err.strip().endswith("ignored; did you mean datalist?")
    assert not out.exists()


@pytest.mark.parametrize("damage", ["truncated", "junk"])
def test_damaged_weights_are_refused_naming_the_file(bundle, sample_data, tmp_path, capsys, damage):
    """A ``model.pt`` cut short (a copy interrupted) or not a torch archive at all: exit 2 naming the file, from
    ``infer`` (the bundle's loader) and ``export`` (our own load) alike, not an internal error."""
    copy = shutil.copytree(bundle, tmp_path / "bundle")
    weights = copy / "models" / "model.pt"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not a checkpoint" * 64)
    datalist = json.dumps([{"image": str(sample_data / "totalsegmentator_ct_dicom" / "series")}])
    for argv in (
        ["infer", "--bundle", str(copy), "--output-dir", str(tmp_path / "o"), f"datalist={datalist}"],
        ["export", "--bundle", str(copy), "--format", "torchscript", "-o", str(tmp_path / "net.ts")],
    ):
        assert main(argv) == 2, argv[0]
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert str(weights) in last and "is not a weights file" in last, last


def test_a_bundle_without_weights_says_to_train_it(bundle, sample_data, tmp_path, capsys):
    """A bundle fresh from ``monai-unet plan`` has no ``models/model.pt``: say so and how to train it, not that the
    file is damaged."""
    copy = shutil.copytree(bundle, tmp_path / "bundle")
    (copy / "models" / "model.pt").unlink()
    datalist = json.dumps([{"image": str(sample_data / "totalsegmentator_ct_dicom" / "series")}])
    assert main(["infer", "--bundle", str(copy), "--output-dir", str(tmp_path / "o"), f"datalist={datalist}"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(copy / "models" / "model.pt") in last and "no trained model yet: train it first" in last, last
    # segment says so before it reads any input: an unreadable scan is not what it reports
    junk = tmp_path / "in" / "scan.nii.gz"
    junk.parent.mkdir()
    junk.write_bytes(b"not a scan" * 100)
    for argv in (["segment", str(junk)], ["segment", "-i", str(junk.parent)]):
        assert main([*argv, "-o", str(tmp_path / "seg.nii.gz"), "--bundle", str(copy), "--no-progress"]) == 2, argv
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert "no trained model yet: train it first" in last and "scan.nii.gz" not in last, last


def test_checkpoint_holding_code_is_refused_naming_the_file(bundle, sample_data, tmp_path, capsys):
    """A ``model.pt`` that pickles a callable (or is junk): torch's weights-only loader refuses it, and the command
    exits 2 naming the file instead of reporting an internal error; the callable never runs."""

    class Payload:
        def __reduce__(self):
            return (print, ("the payload ran",))

    copy = shutil.copytree(bundle, tmp_path / "bundle")
    torch.save({"weights": Payload()}, copy / "models" / "model.pt")
    datalist = json.dumps([{"image": str(sample_data / "totalsegmentator_ct_dicom" / "series")}])
    assert main(["infer", "--bundle", str(copy), "--output-dir", str(tmp_path / "o"), f"datalist={datalist}"]) == 2
    captured = capsys.readouterr()
    assert "the payload ran" not in captured.out
    last = captured.err.strip().splitlines()[-1]
    assert str(copy / "models" / "model.pt") in last and "is not a weights file" in last, last
