"""The Slicer module's plain-Python logic, outside Slicer: bundle summary, run plan, command line, progress,
segment names and colours; and the command line it builds, run for real on a tiny bundle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from tiny_bundle import LABEL_COLORS, LABEL_NAMES, write_tiny_bundle

SLICER_MODULE = Path(__file__).resolve().parents[1] / "slicer" / "MonaiUNet"
sys.path.insert(0, str(SLICER_MODULE))

from MonaiUNetLib import (  # noqa: E402 (the module folder is what Slicer puts on sys.path)
    ProgressParser,
    SegmentInfo,
    build_segment_command,
    install_plan,
    merge_segments,
    plan_run,
    read_bundle_summary,
    read_seg_nrrd_segments,
    stop_process_tree,
)

from monai_unet.io import write_segmentation  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("slicer") / "bundle", channels=2)


def test_bundle_summary_lists_channels_and_named_coloured_segments(bundle):
    summary = read_bundle_summary(bundle)
    assert summary.channels == 2 and summary.channel_names == ("channel0", "channel1")
    assert [s.value for s in summary.segments] == [1, 2]  # no background segment
    for segment in summary.segments:
        assert segment.name == LABEL_NAMES[str(segment.value)]
        assert list(segment.color) == LABEL_COLORS[str(segment.value)]


def test_bundle_summary_refuses_a_folder_that_is_not_a_bundle(tmp_path):
    with pytest.raises(ValueError, match="not a bundle folder"):
        read_bundle_summary(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "metadata.json").write_text("{}")
    with pytest.raises(ValueError, match=r"no configs/inference\.json"):
        read_bundle_summary(tmp_path)


def test_bundle_summary_before_monai_unet_is_installed_asks_for_it(bundle, monkeypatch):
    """In a Slicer whose Python lacks monai-unet the summary is refused with what to do, not a traceback."""
    monkeypatch.setitem(sys.modules, "monai_unet.cli.bundle", None)  # import fails as if not installed
    with pytest.raises(ValueError, match="not installed in Slicer's Python"):
        read_bundle_summary(bundle)


def test_plan_and_command_line(bundle, tmp_path):
    plan = plan_run(2, tmp_path)
    assert plan.work_dir.parent == tmp_path and plan.work_dir.is_dir() and not any(plan.work_dir.iterdir())
    assert [p.name for p in plan.inputs] == ["input_0.nrrd", "input_1.nrrd"]
    assert plan.output.name.endswith(".seg.nrrd") and plan.output.parent == plan.work_dir
    assert plan_run(1, tmp_path).work_dir != plan.work_dir  # a fresh folder per run

    command = build_segment_command("/opt/Slicer/bin/PythonSlicer", plan, bundle, device="cpu", tta=True)
    assert command[:5] == ["/opt/Slicer/bin/PythonSlicer", "-m", "monai_unet.cli.main", "segment", str(plan.inputs[0])]
    assert command[5] == str(plan.inputs[1])
    assert command[command.index("-o") + 1] == str(plan.output)
    assert command[command.index("--bundle") + 1] == str(bundle)
    assert command[command.index("--device") + 1] == "cpu"
    assert "--tta" in command and "--fast" in command and "--precise" not in command
    default = build_segment_command("python", plan, bundle, precise=True)
    assert "--device" not in default and "--tta" not in default and "--precise" in default
    with pytest.raises(ValueError, match="device"):
        build_segment_command("python", plan, bundle, device="gpu")


def test_progress_parser_on_tqdm_output_in_odd_chunks():
    stream = (
        "monai-unet segment: reading 1 input(s)\n"
        "  0%|          | 0/31 [00:00<?, ?it/s]\r 42%|####      | 13/31 [00:01<00:01, 12it/s]"
        "\r100%|##########| 31/31 [00:02<00:00, 15it/s]\n"
        "monai-unet segment: wrote out.seg.nrrd"
    )
    parser = ProgressParser()
    lines, fractions = [], []
    for start in range(0, len(stream), 7):  # the process's pipe delivers arbitrary pieces
        lines += parser.feed(stream[start : start + 7])
        fractions.append(parser.fraction)
    lines += parser.finish()
    assert lines == ["monai-unet segment: reading 1 input(s)", "monai-unet segment: wrote out.seg.nrrd"]
    seen = [f for f in fractions if f is not None]
    assert seen[0] == 0.0 and 0.42 in seen and seen[-1] == 1.0 and seen == sorted(seen)


def test_segment_names_and_colours_from_a_written_seg_nrrd(bundle, tmp_path):
    labels = np.zeros((6, 5, 4), dtype=np.uint8)
    labels[1:3, 1:3, 1:3] = 2
    labels[4, 4, 3] = 7  # a label the bundle does not name
    reference = sitk.Image(6, 5, 4, sitk.sitkInt16)
    path = write_segmentation(
        labels, reference, tmp_path / "s.seg.nrrd", label_names={2: "bone"}, colors={2: [1, 0, 0]}
    )
    written = read_seg_nrrd_segments(path)
    assert [(s.value, s.name, s.color) for s in written] == [
        (2, "bone", (1.0, 0.0, 0.0)),
        (7, "Segment_7", written[1].color),
    ]
    stated = read_bundle_summary(bundle).segments
    merged = merge_segments(written, stated)
    assert merged[0] == SegmentInfo(2, LABEL_NAMES["2"], tuple(LABEL_COLORS["2"]))  # the bundle's name wins
    assert merged[1] == written[1]  # unnamed by the bundle: kept as written


def test_the_built_command_runs_and_writes_what_slicer_loads(tmp_path, sample_data):
    """The exact command the module starts, with this Python in place of PythonSlicer, on NRRD files as Slicer
    writes them."""
    bundle = write_tiny_bundle(tmp_path / "ct_bundle", channels=1)
    plan = plan_run(1, tmp_path)
    series = sample_data / "totalsegmentator_ct_dicom" / "series"
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(series)))
    volume = reader.Execute()
    sitk.WriteImage(volume, str(plan.inputs[0]))  # what slicer.util.saveNode writes: NRRD in LPS
    command = build_segment_command(sys.executable, plan, bundle, device="cpu")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    parser = ProgressParser()
    lines = parser.feed(result.stderr) + parser.finish()
    assert any(line.startswith("monai-unet segment: wrote") for line in lines)
    assert parser.fraction == 1.0  # the sliding-window progress bar reached the end
    segments = read_seg_nrrd_segments(plan.output)
    assert segments and all(s.name == LABEL_NAMES[str(s.value)] for s in segments)
    written = sitk.ReadImage(str(plan.output))
    assert written.GetSize() == volume.GetSize()
    np.testing.assert_allclose(written.GetOrigin(), volume.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(written.GetDirection(), volume.GetDirection(), atol=1e-6)


def test_slicer_module_file_imports_outside_slicer():
    import importlib

    module = importlib.import_module("MonaiUNet")
    assert module.slicer is None  # no Slicer here; the classes exist for Slicer to instantiate
    assert {"MonaiUNet", "MonaiUNetLogic", "MonaiUNetWidget"} <= set(dir(module))


def _wheel(path: Path, name: str, requires: list[str]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as wheel:
        metadata = [f"Name: {name}", "Version: 0.4.0", *(f"Requires-Dist: {r}" for r in requires)]
        wheel.writestr(f"{name.replace('-', '_')}-0.4.0.dist-info/METADATA", "\n".join(metadata) + "\n")
    return path


def test_install_never_touches_torch_numpy_or_slicers_simpleitk(tmp_path):
    """From a wheel or a checkout: the package without dependencies, then its dependencies with the dicom extra,
    less what Slicer's Python provides; refused before anything is installed when torch is missing."""
    requires = ["torch>=2.4", "monai>=1.6", "SimpleITK>=2.3", "numpy>=1.24", 'pydicom>=2.4; extra == "dicom"']
    requires += ['onnx>=1.15; extra == "onnx"', 'tomli>=2; python_version < "3.11"']
    wheel = _wheel(tmp_path / "monai_unet-0.4.0-py3-none-any.whl", "monai-unet", requires)
    plan = install_plan(wheel, importable=lambda module: True)
    assert plan.package == [str(wheel), "--no-deps"]
    assert plan.requirements == ["monai>=1.6", "pydicom>=2.4", 'tomli>=2; python_version < "3.11"']

    checkout = Path(__file__).resolve().parents[1]
    from_source = install_plan(checkout, importable=lambda module: True)
    assert from_source.package == ["-e", str(checkout), "--no-deps"]
    names = {r.split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in from_source.requirements}
    assert {"monai", "nibabel", "pytorch-ignite", "pydicom", "highdicom"} <= names
    assert not names & {"torch", "numpy", "simpleitk", "onnx"}

    with pytest.raises(ValueError, match="torch not found in Slicer's Python: install PyTorch first"):
        install_plan(wheel, importable=lambda module: module != "torch")
    other = _wheel(tmp_path / "other-1.0-py3-none-any.whl", "monai-unet-fork", requires)
    with pytest.raises(ValueError, match="this is monai-unet-fork, not monai-unet"):
        install_plan(other, importable=lambda module: True)
    with pytest.raises(ValueError, match=r"pick a monai_unet-\*\.whl file or a monai-unet source folder"):
        install_plan(tmp_path, importable=lambda module: True)


def test_cancel_stops_the_launcher_and_the_python_it_started():
    """PythonSlicer is a launcher whose child is the real Python: both stop (the child by SIGTERM first)."""
    import time

    from MonaiUNetLib.process import _alive, descendants

    launcher = subprocess.Popen(["sh", "-c", f"'{sys.executable}' -c 'import time; time.sleep(120)' & wait"])
    deadline = time.monotonic() + 20
    while not descendants(launcher.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    (python,) = descendants(launcher.pid)
    stop_process_tree(launcher.pid)
    assert launcher.wait(timeout=10) is not None
    deadline = time.monotonic() + 10
    while _alive(python) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(python), "the Python the launcher started still runs"
