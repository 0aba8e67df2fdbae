"""``atomic_path``: the write appears complete under its name or not at all, through a private folder, and the
process umask is read without being changed."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from monai_unet.io.atomic import atomic_path


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
