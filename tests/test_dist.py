"""The wheel works outside the checkout: built, installed into a fresh virtual environment, and run from elsewhere.

The fresh environment reuses this one's installed dependencies (torch, MONAI, ...) through a ``.pth`` line, so
nothing is downloaded; the package itself and its shipped bundles come only from the wheel.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import monai_unet

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _build_wheel(out: Path) -> Path:
    build = [sys.executable, "-c", f"from setuptools import build_meta as b; print(b.build_wheel({str(out)!r}))"]
    scratch = ROOT / "build"
    existed = scratch.exists()
    try:
        result = subprocess.run(build, cwd=ROOT, capture_output=True, text=True, timeout=300)
    finally:
        if not existed:  # setuptools' scratch folder; one the developer had stays
            shutil.rmtree(scratch, ignore_errors=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return out / result.stdout.strip().splitlines()[-1]


def _fresh_environment(path: Path) -> Path:
    """A virtual environment with pip and no packages of its own; this environment's site-packages is appended to
    its path (a plain path line: the editable install's finder in there is not activated)."""
    venv.EnvBuilder(with_pip=True).create(path)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "_reuse_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_wheel_installs_and_segments_outside_the_checkout(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for shipped in ("em_membrane_segmentation", "brain_tumor_mri_segmentation"):
        for part in ("configs/metadata.json", "configs/inference.json", "docs/README.md", "models/model.pt"):
            assert f"monai_unet/shipped_bundles/{shipped}/{part}" in names
    assert not any("/runs/" in name for name in names), "training runs must not travel in the wheel"

    python = _fresh_environment(tmp_path / "venv")
    install = [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    image = shutil.copy(ROOT / "sample_data" / "isbi2012_em" / "images" / "00.png", elsewhere / "slice.png")

    def run(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([str(a) for a in args], cwd=elsewhere, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    where = run(python, "-c", "import monai_unet.cli.bundle as b; print(b.__file__, b.SHIPPED_BUNDLES)")
    package_file, shipped_dir = where.stdout.split()
    assert Path(package_file).is_relative_to(tmp_path / "venv"), "the wheel's package, not the checkout's"
    assert Path(shipped_dir).is_relative_to(tmp_path / "venv")

    cli = tmp_path / "venv" / "bin" / "monai-unet"
    version = run(cli, "--version").stdout.split()[-1]
    assert version == monai_unet.__version__
    assert run(python, "-m", "monai_unet", "--version").stdout.split()[-1] == version
    listed = json.loads(run(cli, "bundles", "--json").stdout)
    assert {item["name"] for item in listed} == {"em_membrane_segmentation", "brain_tumor_mri_segmentation"}
    assert "512" in run(cli, "info", image).stdout

    out = elsewhere / "slice_seg.png"
    run(cli, "segment", image, "-o", out, "--bundle", "em_membrane_segmentation", "--no-progress")
    labels = np.asarray(Image.open(out))
    assert labels.shape == (512, 512) and 0.05 < (labels == labels.max()).mean() < 0.5, "membranes found"
