"""DICOM series → one 3D volume with its geometry, refusing awkward series with a clear error.

What happens to a folder (or a list of files):

1. **Discovery.** Every file directly in the folder (not in sub-folders) is opened with pydicom, headers only.
   Files that are not DICOM, and DICOM files without pixels (DICOMDIR, structured reports), are **ignored with
   a warning** naming them, so that a ``README`` or ``.DS_Store`` in an export does not block reading. A folder
   with no DICOM image at all is an error. A *damaged* DICOM file (``DICM`` preamble, unreadable header) is an
   error naming it, wherever it lies in the stack, unless ``skip_unreadable=True`` (then it is ignored with the
   warning, and the checks below see the gap it leaves).
2. **Selection.** Images are grouped by SeriesInstanceUID (an empty UID is a valid group). Several series raise
   an error listing each one (UID, description, slice count) unless ``series_uid`` selects one.
3. **Checks**, each its own :class:`~monai_unet.io.errors.ImageInputError` naming the folder, the files and what
   to do: fewer than ``min_slices`` slices; slices of different size; inconsistent ImageOrientationPatient;
   two slices at one position (several echoes/phases/time points in one series); gantry tilt (slice positions
   that do not advance along the slice normal); a missing slice or otherwise non-uniform spacing (naming the
   gap and its neighbouring files).
4. **Order and geometry.** Slices are sorted by ImagePositionPatient projected on the slice normal
   (row × column direction), never by InstanceNumber or file name. The volume's axes are x along a row, y down
   the rows, z along the normal; its origin is the first slice's ImagePositionPatient (LPS, mm).
5. **Pixels.** Classic single-frame series are decoded by SimpleITK/GDCM file by file (JPEG 2000, JPEG lossless,
   JPEG-LS and RLE included) with each file's RescaleSlope/Intercept applied, so CT comes out in HU. Enhanced
   (multi-frame) CT/MR files are decoded by pydicom and placed by their per-frame functional groups
   (PlanePosition, PlaneOrientation, PixelMeasures, PixelValueTransformation).

With ``resample=True`` a tilted or unevenly spaced series is instead resampled (trilinear) onto a regular grid
whose z axis follows the table (first → last slice position), whose x axis is the row direction and whose
in-plane spacing is the pixel spacing; voxels outside the scanned region get the series' minimum value. The
result is float32 and its meta carries ``resampled = True``. A missing slice is then bridged by interpolation,
so only use it when that is acceptable.
"""

from monai_unet.io.dicom.headers import DicomSeriesInfo, is_dicom_file, list_dicom_series
from monai_unet.io.dicom.series import read_dicom_header, read_dicom_series

__all__ = ["DicomSeriesInfo", "is_dicom_file", "list_dicom_series", "read_dicom_header", "read_dicom_series"]
