"""Plain-Python logic of the MonaiUNet Slicer module (no Slicer API; tested in ``tests/test_slicer_logic.py``)."""

from __future__ import annotations

from MonaiUNetLib.install import InstallPlan, install_plan
from MonaiUNetLib.logic import (
    BundleSummary,
    ProgressParser,
    RunPlan,
    SegmentInfo,
    build_segment_command,
    merge_segments,
    plan_run,
    read_bundle_summary,
    read_seg_nrrd_segments,
)
from MonaiUNetLib.process import stop_process_tree
from MonaiUNetLib.scene import link_to_reference

__all__ = [
    "BundleSummary",
    "InstallPlan",
    "ProgressParser",
    "RunPlan",
    "SegmentInfo",
    "build_segment_command",
    "install_plan",
    "link_to_reference",
    "merge_segments",
    "plan_run",
    "read_bundle_summary",
    "read_seg_nrrd_segments",
    "stop_process_tree",
]
