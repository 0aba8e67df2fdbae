"""Placing a loaded segmentation in Slicer's scene. The functions take MRML node objects and call their methods
only (no ``slicer`` import), so they run against ``slicer-core`` outside the application
(``tests/test_slicer_core.py``)."""

from __future__ import annotations

__all__ = ["link_to_reference"]


def link_to_reference(segmentation_node, volume_node, hierarchy=None) -> None:
    """Tie ``segmentation_node`` to the volume it was computed from, as Slicer's DICOM SEG export needs: the
    reference geometry (conversion parameter and node reference) and, when the volume sits under a study in the
    subject hierarchy (``vtkMRMLSubjectHierarchyNode``), the same study."""
    segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    segmentation_node.SetNodeReferenceID(
        segmentation_node.GetReferenceImageGeometryReferenceRole(), volume_node.GetID()
    )
    if hierarchy is None:
        return
    volume_item = hierarchy.GetItemByDataNode(volume_node)
    parent = hierarchy.GetItemParent(volume_item) if volume_item else 0
    if not parent or parent == hierarchy.GetSceneItemID():
        return
    item = hierarchy.GetItemByDataNode(segmentation_node)
    if item:
        hierarchy.SetItemParent(item, parent)
    else:
        hierarchy.CreateItem(parent, segmentation_node)
