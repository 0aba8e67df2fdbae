"""Bad input to ``monai-unet segment``: exit code 2, one line on stderr naming the file, nothing at OUTPUT.

Every case runs the real command in a subprocess; the cases that must read images are started together (each
pays the torch/MONAI import) and then checked one by one.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from cli_in_process import run_in_process
from tiny_bundle import write_tiny_bundle

D2N = "dicom2nifti_testcases"


def _command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "monai_unet.cli.main", *(str(a) for a in args)]


def _nifti(path: Path, shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> Path:
    image = sitk.GetImageFromArray(np.random.default_rng(0).normal(size=shape[::-1]).astype(np.float32))
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))
    return path


def _assert_refused(result: subprocess.CompletedProcess, named: Path | str, output: Path, problem: str) -> None:
    """Exit code 2, the last stderr line is the one error line naming ``named``, nothing at ``output``."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert lines and lines[-1].startswith("monai-unet segment: error: "), result.stderr[-2000:]
    assert str(named) in lines[-1], lines[-1]
    assert problem in lines[-1], lines[-1]
    assert "Traceback" not in result.stderr
    assert not output.exists()
    assert not [p for p in output.parent.iterdir() if p.name.startswith(f".{output.name}")], "staging left behind"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("bundles")
    return {1: write_tiny_bundle(root / "one", channels=1), 2: write_tiny_bundle(root / "two", channels=2)}


def test_argument_errors_answer_without_reading_images(bundles, sample_data, tmp_path, capsys, monkeypatch):
    from monai_unet.io import SimpleITKReader

    read = []
    original = SimpleITKReader.get_data
    monkeypatch.setattr(SimpleITKReader, "get_data", lambda self, *a, **k: read.append(a) or original(self, *a, **k))
    flair = sample_data / "brats2013" / "brats_2013_pat0004_1" / "Flair_subtrMeanDivStd.nii.gz"
    out, mha = tmp_path / "seg.nii.gz", tmp_path / "seg.mha"
    cases = [
        (["segment", tmp_path / "missing.nii.gz", "-o", out, "--bundle", bundles[1]], out, "missing.nii.gz", "no such"),
        (["segment", flair, "-o", mha, "--bundle", bundles[1]], mha, "seg.mha", "output format"),
        (["segment", flair, "-o", out, "--bundle", bundles[2]], out, str(flair), "takes 2 channel(s)"),
        (["segment", flair, "-o", out, "--bundle", tmp_path / "nothing"], out, "nothing", "no such bundle"),
    ]
    for k, (args, output, named, problem) in enumerate(cases):  # the first as a process, the others in this one
        if k == 0:
            result = subprocess.run(_command(*args), capture_output=True, text=True, timeout=120)
        else:
            result = run_in_process(capsys, *args)
        _assert_refused(result, named, output, problem)
    assert read == [], "an argument error was answered after reading an image"


def test_bad_images_are_refused_with_one_line_and_no_output(bundles, shared_data, sample_data, tmp_path):
    corrupt = tmp_path / "corrupt.nii.gz"
    data = gzip.compress(_nifti(tmp_path / "good.nii", (32, 32, 8), (1.0, 1.0, 2.0)).read_bytes())
    corrupt.write_bytes(data[: len(data) // 2])  # a download cut short
    two_series = tmp_path / "two_series"
    two_series.mkdir()
    for case in ("generic/anatomical/001", "philips/anatomical/001"):
        for f in (shared_data / D2N / case).iterdir():
            shutil.copy(f, two_series / f"{case.split('/')[0]}_{f.name}")
    two_slices = shared_data / D2N / "failing" / "slicecount" / "001"
    missing_slice = shared_data / D2N / "failing" / "sliceincrement" / "001"
    flair = sample_data / "brats2013" / "brats_2013_pat0004_1" / "Flair_subtrMeanDivStd.nii.gz"
    other_grid = _nifti(tmp_path / "t1c_other_grid.nii.gz", (240, 240, 77), (1.0, 1.0, 2.0))
    cases = {
        "corrupt": ([corrupt], bundles[1], corrupt, "corrupt.nii.gz", "is truncated or corrupt"),
        "two series": ([two_series], bundles[1], two_series, "two_series", "holds 2 DICOM series"),
        "two slices": ([two_slices], bundles[1], two_slices, str(two_slices), "only 2 slice(s)"),
        "channel grids": ([flair, other_grid], bundles[2], other_grid, "t1c_other_grid", "first channel"),
        "missing slice": ([missing_slice], bundles[1], missing_slice, str(missing_slice), "missing slice"),
    }
    previous = tmp_path / "missing_slice.seg.nrrd"
    previous.write_bytes(b"an earlier result")  # must survive a refused run untouched
    running = {}
    for name, (inputs, bundle, _, _, _) in cases.items():
        output = tmp_path / f"{name.replace(' ', '_')}.seg.nrrd"
        command = _command("segment", *inputs, "-o", output, "--bundle", bundle)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        running[name] = (process, output)
    for name, (process, output) in running.items():
        stdout, stderr = process.communicate(timeout=300)
        result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        _, _, _, named, problem = cases[name]
        if output == previous:
            assert previous.read_bytes() == b"an earlier result"
            previous.unlink()  # so that the common check (no file at OUTPUT) applies
        _assert_refused(result, named, output, problem)


def test_output_that_names_an_input_is_refused_and_the_input_kept(bundles, sample_data, tmp_path, capsys):
    """``-o`` (or ``--probabilities``) equal to an input, or ``--probabilities`` equal to ``-o``: exit 2 before
    any work, the input byte for byte as it was."""
    flair = tmp_path / "flair.nii.gz"
    shutil.copy(sample_data / "brats2013" / "brats_2013_pat0004_1" / "Flair_subtrMeanDivStd.nii.gz", flair)
    before = flair.read_bytes()
    out = tmp_path / "seg.nii.gz"
    cases = [
        (["-o", flair], "-o names an input"),
        (["-o", tmp_path / "." / "flair.nii.gz"], "-o names an input"),
        (["-o", out, "--probabilities", flair], "--probabilities names an input"),
        (["-o", out, "--probabilities", out], "the same path"),
    ]
    for k, (extra, problem) in enumerate(cases):  # the first as a process, the others in this one
        args = ("segment", flair, *extra, "--bundle", bundles[1])
        if k == 0:
            result = subprocess.run(_command(*args), capture_output=True, text=True, timeout=120)
        else:
            result = run_in_process(capsys, *args)
        assert result.returncode == 2, result.stderr[-2000:]
        last = result.stderr.strip().splitlines()[-1]
        assert problem in last and "Traceback" not in result.stderr, last
        assert flair.read_bytes() == before
        assert not out.exists()


def test_sigterm_during_segment_removes_the_staging_folder(bundles, sample_data, tmp_path):
    """A job scheduler's SIGTERM while the bundle runs: exit 143, no staging folder, no output (as with Ctrl-C)."""
    import signal
    import time

    subject = sample_data / "brats2013" / "brats_2013_pat0004_1"
    out = tmp_path / "seg.nii.gz"
    process = subprocess.Popen(
        _command(
            "segment", subject / "Flair_subtrMeanDivStd.nii.gz", "-o", out, "--bundle", bundles[1], "--tta", "--precise"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".seg.nii.gz.*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "segment finished before the staging folder was seen"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr[-2000:]
    assert "terminated" in stderr.strip().splitlines()[-1]
    assert not out.exists()
    assert not list(tmp_path.glob(".seg.nii.gz.*")), "staging left behind"


def test_dicom_seg_output_of_a_series_without_frame_of_reference_is_refused_first(bundles, sample_data, tmp_path):
    """A DICOM SEG must share its source's FrameOfReferenceUID: a series lacking it is refused before inference,
    naming the series, instead of failing after the whole run with a traceback."""
    import pydicom

    series = tmp_path / "series"
    series.mkdir()
    for source in sorted((sample_data / "totalsegmentator_ct_dicom" / "series").iterdir()):
        ds = pydicom.dcmread(source)
        del ds.FrameOfReferenceUID
        ds.save_as(series / source.name)
    out = tmp_path / "seg_folder"
    result = subprocess.run(
        _command("segment", series, "-o", out, "--bundle", bundles[1]), capture_output=True, text=True, timeout=120
    )
    _assert_refused(result, series, out, "has no FrameOfReferenceUID")
    assert "running" not in result.stderr  # refused before the bundle ran


def test_dimension_mismatches_are_refused_before_inference(bundles, tmp_path):
    """A 2D picture for a 3D bundle, a .png output for a 3D input: exit 2 naming the path, before the bundle runs."""
    from PIL import Image

    picture = tmp_path / "slice.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32), dtype=np.uint8)).save(picture)
    out = tmp_path / "seg.nii.gz"
    result = subprocess.run(
        _command("segment", picture, "-o", out, "--bundle", bundles[1]), capture_output=True, text=True, timeout=120
    )
    _assert_refused(result, picture, out, "is a 2D image, but the bundle")
    volume = _nifti(tmp_path / "volume.nii.gz", (32, 32, 16), (1.0, 1.0, 1.0))
    png = tmp_path / "seg.png"
    result = subprocess.run(
        _command("segment", volume, "-o", png, "--bundle", bundles[1]), capture_output=True, text=True, timeout=120
    )
    _assert_refused(result, png, png, "a .png output holds one 2D slice")


def _file_size_limit(limit: int):
    """For ``preexec_fn``: the kernel cuts every write of the child short at ``limit`` bytes, as a full disk does
    (``RLIMIT_FSIZE``; SIGXFSZ ignored, so the write returns short / fails with EFBIG instead of killing it)."""
    import resource
    import signal

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_keeps_the_previous_output(bundles, tmp_path):
    """Writes cut short (NIfTI through SimpleITK, .seg.nrrd through our writer): exit 2 naming OUTPUT, the earlier
    output byte for byte as it was, no temporary or staging folder; a staging folder that a killed run left is
    swept by the next run."""
    scan = _nifti(tmp_path / "scan.nii.gz", (48, 48, 24), (1.0, 1.0, 2.0))
    names = ("seg.nii.gz", "seg.seg.nrrd")
    for name in names:
        (tmp_path / f".{name}.killed.monai-unet").mkdir()
    firsts = {  # the two formats run side by side: each run pays the MONAI import
        name: subprocess.Popen(
            _command("segment", scan, "-o", tmp_path / name, "--bundle", bundles[1]),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    }
    before = {}
    for name, process in firsts.items():
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-2000:]
        assert not (tmp_path / f".{name}.killed.monai-unet").exists(), "the killed run's staging folder is swept"
        before[name] = (tmp_path / name).read_bytes()
    limited = {
        name: subprocess.Popen(
            _command("segment", scan, "-o", tmp_path / name, "--bundle", bundles[1]),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_file_size_limit(len(before[name]) // 2),
        )
        for name in names
    }
    for name, process in limited.items():
        out = tmp_path / name
        _, stderr = process.communicate(timeout=600)
        result = subprocess.CompletedProcess(process.args, process.returncode, "", stderr)
        last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
        assert result.returncode == 2, result.stderr[-2000:]
        assert last.startswith(f"monai-unet segment: error: {out}: "), last
        assert any(words in last for words in ("file too large", "did not read back complete", "could not write")), last
        assert out.read_bytes() == before[name]
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(f".{name}")) == []


@pytest.mark.parametrize("writer", ["SaveImaged", "SavePredictiond"])
def test_probabilities_cut_short_by_a_full_disk_are_named_and_nothing_is_replaced(bundles, tmp_path, writer):
    """Exit 2 naming ``--probabilities`` (not an internal error), both earlier outputs kept byte for byte: for a
    bundle that writes them with MONAI's ``SaveImaged`` (which hides the ``OSError`` in its message) and with our
    atomic ``SavePredictiond``, as the shipped and planned bundles do."""
    bundle, scans = bundles[1], [_nifti(tmp_path / "scan.nii.gz", (48, 48, 24), (1.0, 1.0, 2.0))]
    if writer == "SavePredictiond":  # the tiny bundle with the probability writer of the shipped bundles
        bundle = tmp_path / "bundle"
        shutil.copytree(bundles[1], bundle)
        config = json.loads((bundle / "configs" / "inference.json").read_text())
        config["probability_saving"][1] = {
            "_target_": "monai_unet.io.SavePredictiond",
            "keys": "prob",
            "output_dir": "@output_dir",
            "output_postfix": "prob",
            "probabilities": True,
        }
        (bundle / "configs" / "inference.json").write_text(json.dumps(config))
    out, probabilities = tmp_path / "seg.nii.gz", tmp_path / "seg_prob.nii.gz"
    command = _command("segment", *scans, "-o", out, "--probabilities", probabilities, "--bundle", bundle)
    before = {out: b"an earlier segmentation", probabilities: b"earlier probabilities"}
    for path, content in before.items():
        path.write_bytes(content)
    limit = 100_000  # the labels (about 10 kB) fit, the float probabilities (about 600 kB) do not
    limited = subprocess.run(command, capture_output=True, text=True, timeout=300, preexec_fn=_file_size_limit(limit))
    last = limited.stderr.strip().splitlines()[-1]
    assert limited.returncode == 2, limited.stderr[-2000:]
    assert last.startswith(f"monai-unet segment: error: {probabilities}: file too large"), last
    assert {path: path.read_bytes() for path in before} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_an_output_folder_nobody_may_write_is_exit_2_naming_it(bundles, tmp_path):
    """sysfs refuses new files even to root (as a read-only or foreign folder would): exit 2 with the path and
    the system's reason, before the inference, not an internal error."""
    scan = _nifti(tmp_path / "scan.nii.gz", (16, 16, 8), (1.0, 1.0, 2.0))
    if not Path("/sys").is_dir():
        pytest.skip("no /sys here")
    result = subprocess.run(
        _command("segment", scan, "-o", "/sys/seg.nii.gz", "--bundle", bundles[1]), capture_output=True, text=True
    )
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2, result.stderr[-2000:]
    assert last.startswith("monai-unet segment: error: /sys/") and "internal error" not in last, last
    assert "Traceback" not in result.stderr


def test_a_value_error_from_our_own_code_is_an_internal_error(tmp_path, monkeypatch, capsys):
    """Only :class:`InputError` (bad input, arguments) and missing files are exit 2: a plain ``ValueError`` raised by
    a bug inside a command is exit 1 with the debug hint, not blamed on the user's input."""
    from monai_unet.cli import main as cli
    from monai_unet.cli import segment

    scan = _nifti(tmp_path / "scan.nii.gz", (16, 16, 8), (1.0, 1.0, 2.0))

    def buggy(args):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr(segment, "run", buggy)
    code = cli.main(["segment", str(scan), "-o", str(tmp_path / "seg.nii.gz"), "--bundle", str(tmp_path)])
    assert code == cli.EXIT_INTERNAL
    assert "internal error: ValueError: operands could not" in capsys.readouterr().err

    def refused(args):
        raise segment.UsageError(f"{scan}: not usable")

    monkeypatch.setattr(segment, "run", refused)
    assert cli.main(["segment", str(scan), "-o", str(tmp_path / "seg.nii.gz"), "--bundle", str(tmp_path)]) == 2


def test_train_and_infer_refuse_an_output_folder_nobody_may_write(bundles, tmp_path, capsys):
    """``--output-dir`` on a file system that refuses new files (sysfs, even to root), or with a file in the way:
    exit 2 naming the folder before the bundle runs; nothing is created."""
    if not Path("/sys").is_dir():
        pytest.skip("no /sys here")
    result = subprocess.run(
        _command("infer", "--bundle", bundles[1], "--output-dir", "/sys/monai_unet_out"), capture_output=True, text=True
    )
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2, result.stderr[-2000:]
    assert last.startswith("monai-unet infer: error: /sys/monai_unet_out: cannot write here (in /sys)"), last
    in_the_way = tmp_path / "a_file"
    in_the_way.write_text("not a folder")
    refused = run_in_process(capsys, "train", "--bundle", bundles[1], "--output-dir", in_the_way / "run")
    assert refused.returncode == 2 and "a_file is a file, not a folder" in refused.stderr, refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"], "no probe or folder left behind"
