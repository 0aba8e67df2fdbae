"""``monai-unet segment -i SOURCE -o OUTDIR``: every case in one run, a damaged case set aside with its reason,
existing outputs skipped (an interrupted batch resumes), ``--overwrite`` redoes them; ``--checkpoint`` swaps the
weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from cli_in_process import run_in_process
from PIL import Image
from tiny_bundle import write_tiny_bundle


def _segment(*args: str | Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "monai_unet.cli.main", "segment", *(str(a) for a in args), "--no-progress"]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def _scan(path: Path, shape: tuple[int, int, int], spacing: tuple[float, float, float], seed: int, x0=None) -> Path:
    image = sitk.GetImageFromArray(np.random.default_rng(seed).normal(size=shape[::-1]).astype(np.float32))
    image.SetSpacing(spacing)
    image.SetOrigin((10.0 * seed if x0 is None else x0, -5.0, 3.0))
    sitk.WriteImage(image, str(path))
    return path


def _labels(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_a_folder_of_scans_resumes_and_names_the_damaged_one(tmp_path):
    bundle = write_tiny_bundle(tmp_path / "bundle")
    scans = tmp_path / "scans"
    scans.mkdir()
    good = [
        _scan(scans / "a.nii.gz", (40, 36, 20), (1.0, 1.0, 2.0), 1),
        _scan(scans / "b.nii.gz", (32, 44, 16), (0.8, 0.8, 3.0), 2),
    ]
    (scans / "c.nii.gz").write_bytes(good[0].read_bytes()[:300])  # cut short
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(scans / "d.png")  # a picture, for a 3D bundle
    out = tmp_path / "segmentations"

    first = _segment("-i", scans, "-o", out, "--bundle", bundle)
    assert first.returncode == 2, first.stderr[-2000:]
    assert "2 written, 0 skipped (output exists), 2 failed" in first.stderr
    assert "failed: c: " in first.stderr and "c.nii.gz" in first.stderr
    assert "failed: d: " in first.stderr and "d.png: is a 2D image" in first.stderr, "refused before the inference"
    assert first.stdout.split() == [str(out / "a_seg.nii.gz"), str(out / "b_seg.nii.gz")]
    for scan in good:
        written = sitk.ReadImage(str(out / scan.name.replace(".nii.gz", "_seg.nii.gz")))
        source = sitk.ReadImage(str(scan))
        assert written.GetSize() == source.GetSize()
        np.testing.assert_allclose(written.GetOrigin(), source.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(written.GetSpacing(), source.GetSpacing(), atol=1e-6)
    assert sorted(p.name for p in out.iterdir()) == ["a_seg.nii.gz", "b_seg.nii.gz"], "no temporaries left"

    (scans / "c.nii.gz").unlink()
    (scans / "d.png").unlink()
    (out / "b_seg.nii.gz").unlink()  # as if the run had stopped after a
    kept = (out / "a_seg.nii.gz").stat().st_mtime_ns
    second = _segment("-i", scans, "-o", out, "--bundle", bundle)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "1 written, 1 skipped (output exists), 0 failed" in second.stderr
    assert (out / "a_seg.nii.gz").stat().st_mtime_ns == kept and (out / "b_seg.nii.gz").is_file()

    # --overwrite redoes them, here as .seg.nrrd with other weights (--checkpoint; the bundle's own stay untouched)
    other = write_tiny_bundle(tmp_path / "other", seed=1) / "models" / "model.pt"
    shipped = (bundle / "models" / "model.pt").read_bytes()
    third = _segment(
        "-i", scans, "-o", out, "--bundle", bundle, "--overwrite", "--format", ".seg.nrrd", "--checkpoint", other
    )
    assert third.returncode == 0, third.stderr[-2000:]
    assert "2 written, 0 skipped" in third.stderr
    assert {p.name for p in out.glob("*.seg.nrrd")} == {"a_seg.seg.nrrd", "b_seg.seg.nrrd"}
    before, after = (_labels(out / f"a_seg{e}") > 0 for e in (".nii.gz", ".seg.nrrd"))
    after = after.any(axis=-1) if after.ndim > before.ndim else after  # .seg.nrrd may hold layers
    assert before.shape == after.shape and (before != after).any(), "other weights, other segmentation"
    assert (bundle / "models" / "model.pt").read_bytes() == shipped


def test_a_dataset_json_test_list_and_argument_errors(tmp_path, capsys):
    bundle = write_tiny_bundle(tmp_path / "bundle", channels=2)
    for name in ("p1", "p2"):
        for channel in (0, 1):
            _scan(tmp_path / f"{name}_{channel:04d}.nii.gz", (24, 24, 12), (1.0, 1.0, 2.0), channel + 1, x0=0.0)
    listing = tmp_path / "dataset.json"
    listing.write_text(json.dumps({"test": [{"image": [f"p{i}_0000.nii.gz", f"p{i}_0001.nii.gz"]} for i in (1, 2)]}))
    out = tmp_path / "out"
    result = _segment("-i", listing, "-o", out, "--bundle", bundle)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["p1_seg.nii.gz", "p2_seg.nii.gz"]  # the MSD case names

    a_file = out / "p1_seg.nii.gz"
    both = _segment(tmp_path / "p1_0000.nii.gz", "-i", listing, "-o", out, "--bundle", bundle)
    into_file = run_in_process(capsys, "segment", "-i", listing, "-o", a_file, "--bundle", bundle)
    neither = run_in_process(capsys, "segment", "-o", out, "--bundle", bundle)
    no_weights = run_in_process(
        capsys, "segment", "-i", listing, "-o", out, "--bundle", bundle, "--checkpoint", tmp_path / "no.pt"
    )
    among_scans = run_in_process(capsys, "segment", "-i", out, "-o", out / ".." / "out", "--bundle", bundle)
    refusals = ((both, "not both"), (into_file, "is a file"), (neither, "no input"), (no_weights, "no such weights"))
    refusals += ((among_scans, "-o is the folder -i reads"),)
    for result, words in refusals:
        assert result.returncode == 2 and words in result.stderr.strip().splitlines()[-1], result.stderr[-2000:]


def test_two_parts_run_side_by_side_and_write_every_case_once(tmp_path, capsys):
    """``--num-parts 2 --part-id 0/1``: two processes at once on one folder, as two jobs of an array would run."""
    bundle = write_tiny_bundle(tmp_path / "bundle")
    scans = tmp_path / "scans"
    scans.mkdir()
    for seed, name in enumerate("edcba", start=1):  # listed in another order than by name
        _scan(scans / f"{name}.nii.gz", (24, 20, 8), (1.0, 1.0, 2.0), seed)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "monai_unet.cli.main", "segment", "-i", str(scans), "-o", str(out)]
    command += ["--bundle", str(bundle), "--no-progress", "--num-parts", "2", "--part-id"]
    jobs = [
        subprocess.Popen([*command, str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (0, 1)
    ]
    results = [(job.communicate(timeout=600), job.returncode) for job in jobs]
    for (_, stderr), code in results:
        assert code == 0, stderr[-2000:]
    written = [[Path(line).name for line in stdout.split()] for (stdout, _), _ in results]
    assert written == [["a_seg.nii.gz", "c_seg.nii.gz", "e_seg.nii.gz"], ["b_seg.nii.gz", "d_seg.nii.gz"]]
    assert sorted(p.name for p in out.iterdir()) == sorted(written[0] + written[1]), "each case exactly once"

    beyond = run_in_process(
        capsys, "segment", "-i", scans, "-o", out, "--bundle", bundle, "--num-parts", "2", "--part-id", "2"
    )
    one_scan = _segment(scans / "a.nii.gz", "-o", tmp_path / "a.nii.gz", "--bundle", bundle, "--num-parts", "2")
    for result, words in ((beyond, "--part-id must be between 0 and 1"), (one_scan, "go with -i FOLDER")):
        assert result.returncode == 2 and words in result.stderr.strip().splitlines()[-1], result.stderr[-2000:]


def test_torchrun_shards_the_cases_of_the_inference_config(tmp_path):
    """``torchrun --nproc_per_node 2`` with ``multi_gpu_inference.json`` (gloo on CPU): each case written once."""
    from monai_unet.plan.override_configs import multi_gpu_inference_config

    bundle = write_tiny_bundle(tmp_path / "bundle")
    (bundle / "configs" / "multi_gpu_inference.json").write_text(json.dumps(multi_gpu_inference_config()))
    scans = tmp_path / "scans"
    scans.mkdir()
    for seed, name in enumerate("abc", start=1):
        _scan(scans / f"{name}.nii.gz", (24, 20, 8), (1.0, 1.0, 2.0), seed)
    datalist = [{"image": str(scans / f"{name}.nii.gz")} for name in "abc"]
    out = tmp_path / "out"
    configs = [str(bundle / "configs" / name) for name in ("inference.json", "multi_gpu_inference.json")]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517"]
    command += ["-m", "monai.bundle", "run", "--config_file", json.dumps(configs), "--bundle_root", str(bundle)]
    command += ["--datalist", json.dumps(datalist), "--output_dir", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    written = sorted(p.name for p in out.rglob("*.nii.gz"))
    assert written == ["a_seg.nii.gz", "b_seg.nii.gz", "c_seg.nii.gz"], written


def test_voxels_are_decoded_once_and_damaged_voxels_set_the_case_aside(tmp_path, capsys, monkeypatch):
    """Before the bundle runs, only headers are read; each scan is decoded once, by the bundle. A scan whose header
    is sound but whose voxels the reader refuses (a NaN voxel) stops the run there: it is set aside with the
    reader's message and the cases after it are still written, by a second run; one scan alone is refused (exit 2)."""
    from monai_unet.io import SimpleITKReader

    decoded = []
    original = SimpleITKReader.get_data
    monkeypatch.setattr(
        SimpleITKReader,
        "get_data",
        lambda self, img, **k: decoded.append(Path(img.name).name) or original(self, img, **k),
    )
    bundle = write_tiny_bundle(tmp_path / "bundle")
    scans = tmp_path / "scans"
    scans.mkdir()
    _scan(scans / "a.nii.gz", (40, 36, 20), (1.0, 1.0, 2.0), 1)
    _scan(scans / "c.nii.gz", (32, 44, 16), (0.8, 0.8, 3.0), 2)
    damaged = np.random.default_rng(3).normal(size=(20, 36, 40)).astype(np.float32)
    damaged[4, 5, 6] = np.nan
    sitk.WriteImage(sitk.GetImageFromArray(damaged), str(scans / "b.nii.gz"))
    out = tmp_path / "segmentations"

    result = run_in_process(capsys, "segment", "-i", scans, "-o", out, "--bundle", bundle, "--no-progress")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "2 written, 0 skipped (output exists), 1 failed" in result.stderr
    assert "failed: b: " in result.stderr and "b.nii.gz: holds 1 NaN or infinite voxel(s)" in result.stderr
    assert result.stdout.split() == [str(out / "a_seg.nii.gz"), str(out / "c_seg.nii.gz")]
    assert sorted(p.name for p in out.iterdir()) == ["a_seg.nii.gz", "c_seg.nii.gz"], "no temporaries left"
    assert decoded == ["a.nii.gz", "b.nii.gz", "c.nii.gz"], "each scan decoded once, by the bundle"

    decoded.clear()
    alone = run_in_process(capsys, "segment", scans / "b.nii.gz", "-o", tmp_path / "b_seg.nii.gz", "--bundle", bundle)
    assert (
        alone.returncode == 2 and "b.nii.gz: holds 1 NaN or infinite voxel(s)" in alone.stderr.strip().splitlines()[-1]
    )
    assert not (tmp_path / "b_seg.nii.gz").exists() and decoded == ["b.nii.gz"]
    decoded.clear()
    one = run_in_process(capsys, "segment", scans / "a.nii.gz", "-o", tmp_path / "a_seg.nii.gz", "--bundle", bundle)
    assert one.returncode == 0 and (tmp_path / "a_seg.nii.gz").is_file() and decoded == ["a.nii.gz"]


def test_a_bundle_reading_with_monai_loaders_still_gets_damaged_scans_named(tmp_path, capsys):
    """A bundle that reads with MONAI's own readers fails with their error on a truncated ``.nii.gz`` (its header is
    sound): ``segment`` decodes that scan with our reader to name it (exit 2), and ``segment -i`` sets it aside and
    writes the others."""
    bundle = write_tiny_bundle(tmp_path / "bundle")
    config = bundle / "configs" / "inference.json"
    inference = json.loads(config.read_text())
    del inference["preprocessing"]["transforms"][0]["reader"]  # MONAI picks NibabelReader for .nii.gz
    config.write_text(json.dumps(inference, indent=2))
    scans = tmp_path / "scans"
    scans.mkdir()
    _scan(scans / "a.nii.gz", (40, 36, 20), (1.0, 1.0, 2.0), 1)
    _scan(scans / "c.nii.gz", (32, 44, 16), (0.8, 0.8, 3.0), 2)
    whole = _scan(tmp_path / "b.nii.gz", (40, 36, 20), (1.0, 1.0, 2.0), 3).read_bytes()
    (scans / "b.nii.gz").write_bytes(whole[: len(whole) // 2])  # cut short after a sound header
    out = tmp_path / "segmentations"

    result = run_in_process(capsys, "segment", "-i", scans, "-o", out, "--bundle", bundle, "--no-progress")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "2 written, 0 skipped (output exists), 1 failed" in result.stderr
    assert "failed: b: " in result.stderr and "b.nii.gz: is truncated or corrupt" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a_seg.nii.gz", "c_seg.nii.gz"]

    alone = run_in_process(capsys, "segment", scans / "b.nii.gz", "-o", tmp_path / "b_seg.nii.gz", "--bundle", bundle)
    assert alone.returncode == 2 and "b.nii.gz: is truncated or corrupt" in alone.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "b_seg.nii.gz").exists()
