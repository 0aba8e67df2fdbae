"""``atomic_path``: the write appears complete under its name or not at all, through a private folder, and the
process umask is read without being changed."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys

import pytest

from monai_unet.io import ImageInputError, OutputWriteError
from monai_unet.io.atomic import atomic_path, sweep_temporaries


def test_success_renames_into_place_with_umask_permissions_and_no_leftovers(tmp_path):
    target = tmp_path / "seg.nii.gz"
    target.write_text("old")
    with atomic_path(target, suffix=".nii.gz") as temporary:
        assert temporary.name.endswith(".nii.gz") and not temporary.exists()
        folder = temporary.parent
        assert folder.parent == tmp_path and folder.name.startswith(".seg.nii.gz.") and folder.name.endswith(".tmp")
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # nobody else can place a file or link at the name
        temporary.write_text("new")
    assert target.read_text() == "new"
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.nii.gz"]


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "model.pt"
    target.write_text("good weights")
    with pytest.raises(OSError, match="disk full"), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise OSError("disk full")
    assert target.read_text() == "good weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_a_restrictive_umask_is_honoured_and_left_as_it_was(tmp_path):
    """umask 027: the written file is 0640 and the process umask is still 027 after import and write (the module
    reads it from /proc instead of setting it to 0, which another thread creating files could have caught)."""
    code = (
        "import os; os.umask(0o027); from monai_unet.io.atomic import atomic_path\n"
        f"with atomic_path({str(tmp_path / 'x.txt')!r}) as t: t.write_text('x')\n"
        "print(oct(os.umask(0o027)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "0o27"
    assert stat.S_IMODE((tmp_path / "x.txt").stat().st_mode) == 0o640


def _incomplete(problem: str):
    """A ``verify`` for ``atomic_path`` that finds the written file incomplete."""

    def verify(path):
        raise ImageInputError(path, problem)

    return verify


def test_a_full_disk_is_named_and_an_unverified_write_is_not_renamed(tmp_path):
    """ENOSPC from the writer, or a file that does not read back complete: OutputWriteError naming the target, the
    old file kept, no temporary left; ``sweep_temporaries`` removes what a killed writer left."""
    target = tmp_path / "seg.nii.gz"
    target.write_text("good labels")
    with pytest.raises(OutputWriteError, match=r"seg\.nii\.gz: no space left on device"), atomic_path(target) as t:
        t.write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OutputWriteError, match=r"did not read back complete \(holds 10 of 20 bytes\)"):
        with atomic_path(target, verify=_incomplete("holds 10 of 20 bytes")) as t:
            t.write_text("short")
    assert target.read_text() == "good labels"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.nii.gz"]

    for name in (".seg.nii.gz.k3j2.tmp", ".other.nii.gz.x1.tmp", ".seg.nii.gz.ab.monai-unet"):
        (tmp_path / name).mkdir()
    assert [p.name for p in sweep_temporaries(tmp_path, "seg.nii.gz")] == [".seg.nii.gz.k3j2.tmp"]
    assert [p.name for p in sweep_temporaries(tmp_path, suffix=".monai-unet")] == [".seg.nii.gz.ab.monai-unet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.nii.gz.x1.tmp", "seg.nii.gz"]


def test_a_writer_that_hides_the_errno_is_reported_on_a_full_disk(tmp_path, monkeypatch):
    """torch.save and ITK raise RuntimeError on a short write; on a full file system that is reported as no space
    (a mocked statvfs with no free blocks), elsewhere as the writer's own error."""
    target = tmp_path / "model.pt"
    target.write_text("good weights")
    with pytest.raises(RuntimeError, match="unexpected pos"), atomic_path(target):
        raise RuntimeError("unexpected pos 704 vs 598")

    class Full:
        f_bavail, f_frsize = 0, 4096

    monkeypatch.setattr(os, "statvfs", lambda path: Full())
    with pytest.raises(OutputWriteError, match=r"model\.pt: no space left on device"), atomic_path(target):
        raise RuntimeError("unexpected pos 704 vs 598")
    assert target.read_text() == "good weights"
    # a writer that words the failure itself (our SimpleITK wrapper), or a short write found on reading back
    with pytest.raises(OutputWriteError, match=r"model\.pt: no space left on device"), atomic_path(target):
        raise OutputWriteError(target, "SimpleITK could not write it (Could not write file)")

    with pytest.raises(OutputWriteError, match=r"model\.pt: no space left on device"):
        with atomic_path(target, verify=_incomplete("gzip stream ends early")) as temporary:
            temporary.write_text("half")
    assert target.read_text() == "good weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
