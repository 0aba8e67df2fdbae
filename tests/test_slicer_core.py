"""3D Slicer's own MRML code reads what we write, and we read what it writes (the ``slicer-core`` wheel: Slicer's
MRML and segmentation logic without Qt, headless).

Optional: the ``slicer`` extra (``make test-slicer``); skipped where ``slicer-core`` is not installed. Slicer keeps
geometry in RAS, we keep it in LPS: every comparison goes through the same voxel-to-RAS matrix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

slicer_core = pytest.importorskip("slicer_core", reason="needs the slicer extra (make test-slicer)")
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy  # noqa: E402  (vtk comes with slicer-core)
from vtkmodules.vtkCommonDataModel import vtkImageData  # noqa: E402
from vtkmodules.vtkCommonMath import vtkMatrix4x4  # noqa: E402

from monai_unet.io.image_file import read_image_file  # noqa: E402
from monai_unet.io.writers import write_segmentation  # noqa: E402

SHAPE = (14, 11, 7)
NAMES = {1: "liver", 2: "spleen", 5: "tumour"}
COLORS = {1: (0.8, 0.3, 0.2), 2: (0.2, 0.6, 0.9), 5: (1.0, 1.0, 0.0)}


def _oblique_ras_affine() -> np.ndarray:
    """An oblique, anisotropic voxel-to-RAS matrix with an origin off zero."""
    rotation, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))
    affine = np.eye(4)
    affine[:3, :3] = rotation * np.array([0.7, 0.9, 2.5])
    affine[:3, 3] = (12.5, -30.25, 41.0)
    return affine


def _labels() -> np.ndarray:
    labels = np.zeros(SHAPE, dtype=np.int64)
    labels[2:6, 3:8, 1:3] = 1
    labels[8:12, 1:4, 2:6] = 2
    labels[3:5, 4:6, 5] = 5  # a small one on another slice
    return labels


def _matrix(vtk_matrix: vtkMatrix4x4) -> np.ndarray:
    return np.array([[vtk_matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _scene():
    scene = slicer_core.vtkMRMLScene()
    for node in (
        slicer_core.vtkMRMLSegmentationNode(),
        slicer_core.vtkMRMLSegmentationStorageNode(),
        slicer_core.vtkMRMLSegmentationDisplayNode(),
        slicer_core.vtkMRMLScalarVolumeNode(),
        slicer_core.vtkMRMLVolumeArchetypeStorageNode(),
    ):
        scene.RegisterNodeClass(node)
    return scene


def test_our_seg_nrrd_loads_through_slicers_segmentation_storage_node(tmp_path: Path) -> None:
    """Every segment's name, colour and label value, the grid (oblique) and the voxels, as Slicer reads them."""
    affine = _oblique_ras_affine()
    labels = _labels()
    reference = MetaTensor(torch.zeros(1, *SHAPE), affine=torch.from_numpy(affine))
    path = write_segmentation(labels, reference, tmp_path / "case.seg.nrrd", label_names=NAMES, colors=COLORS)

    scene = _scene()
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(path))
    assert storage.ReadData(node) == 1, "Slicer's storage node refused the file"
    segmentation = node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == len(NAMES)
    for index, value in enumerate(sorted(NAMES)):
        segment_id = segmentation.GetNthSegmentID(index)
        segment = segmentation.GetSegment(segment_id)
        assert segment.GetName() == NAMES[value]
        assert segment.GetLabelValue() == value
        np.testing.assert_allclose(segment.GetColor(), COLORS[value], atol=1e-3)

        image = slicer_core.vtkOrientedImageData()
        assert node.GetBinaryLabelmapRepresentation(segment_id, image)
        to_world = vtkMatrix4x4()
        image.GetImageToWorldMatrix(to_world)
        np.testing.assert_allclose(_matrix(to_world), affine, atol=1e-4)  # Slicer's IJK is our (i, j, k)
        x0, x1, y0, y1, z0, z1 = image.GetExtent()
        mask = np.zeros(SHAPE, dtype=bool)
        if x1 >= x0:  # an empty extent holds no voxel
            values = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(z1 - z0 + 1, y1 - y0 + 1, x1 - x0 + 1)
            mask[x0 : x1 + 1, y0 : y1 + 1, z0 : z1 + 1] = values.transpose(2, 1, 0) != 0
        np.testing.assert_array_equal(mask, labels == value, err_msg=f"segment {NAMES[value]}")


@pytest.mark.parametrize("name", ["volume.nrrd", "volume.nii.gz"])
def test_a_volume_slicer_writes_is_read_onto_the_same_grid(tmp_path: Path, name: str) -> None:
    """The module hands Slicer's volume to ``segment`` through ``vtkMRMLVolumeArchetypeStorageNode``: our reader
    places every voxel where Slicer had it."""
    affine = _oblique_ras_affine()
    voxels = np.random.default_rng(0).integers(-1000, 2000, size=SHAPE).astype(np.int16)
    image = vtkImageData()
    image.SetDimensions(*SHAPE)
    image.GetPointData().SetScalars(numpy_to_vtk(voxels.transpose(2, 1, 0).ravel(), deep=True))

    scene = _scene()
    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    volume.SetAndObserveImageData(image)
    ijk_to_ras = vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            ijk_to_ras.SetElement(r, c, affine[r, c])
    volume.SetIJKToRASMatrix(ijk_to_ras)
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(tmp_path / name))
    assert storage.WriteData(volume) == 1

    read = read_image_file(tmp_path / name)
    np.testing.assert_allclose(read.grid.ras_affine(), affine, atol=1e-4)
    np.testing.assert_array_equal(read.array, voxels)


def test_the_loaded_segmentation_is_linked_to_its_reference_volume_and_study() -> None:
    """What Slicer's DICOM SEG export needs: the segmentation refers to the volume it was computed from and sits
    in the volume's study."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "slicer" / "MonaiUNet"))
    from MonaiUNetLib import link_to_reference

    scene = _scene()
    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    hierarchy = slicer_core.vtkMRMLSubjectHierarchyNode.ResolveSubjectHierarchy(scene)
    patient = hierarchy.CreateSubjectItem(hierarchy.GetSceneItemID(), "patient")
    study = hierarchy.CreateStudyItem(patient, "study")
    hierarchy.CreateItem(study, volume)
    hierarchy.CreateItem(hierarchy.GetSceneItemID(), segmentation)

    link_to_reference(segmentation, volume, hierarchy)
    role = segmentation.GetReferenceImageGeometryReferenceRole()
    assert segmentation.GetNodeReference(role).GetID() == volume.GetID()
    assert hierarchy.GetItemParent(hierarchy.GetItemByDataNode(segmentation)) == study
