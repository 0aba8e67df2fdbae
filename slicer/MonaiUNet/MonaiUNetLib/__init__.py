"""Plain-Python logic of the MonaiUNet Slicer module (no Slicer API; tested in ``tests/test_slicer_logic.py``)."""

from __future__ import annotations

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
    segments_from_metadata,
)

__all__ = [
    "BundleSummary",
    "ProgressParser",
    "RunPlan",
    "SegmentInfo",
    "build_segment_command",
    "merge_segments",
    "plan_run",
    "read_bundle_summary",
    "read_seg_nrrd_segments",
    "segments_from_metadata",
]
