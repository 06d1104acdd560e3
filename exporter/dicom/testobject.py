"""The synthetic DICOM object the store prober sends.

It must never be mistaken for a patient and must not pile up in a partner's
archive. So every object names itself a test in the patient and study fields
(patient name and ID start with ZZ, which sorts last in every PACS worklist),
carries no real patient data, and all objects sent to one target belong to
one stable study whose UID is derived from the UID root and the target name:
a partner finds and deletes them as one study. Within it each SOP class has
its own stable series (and frame of reference), because a series holds one
modality. Only the SOP Instance UID is fresh for each store, so each probe is
a real new instance.

The object is a complete, valid instance of the IOD of its SOP class (checked
with dciodvfy in the tests), not a Secondary Capture relabelled, so a
validating archive has no reason to refuse it. Its pixels are native
(uncompressed), so it can only be sent in an uncompressed transfer syntax:
see `store_transfer_syntax_problem` and `encode_for`.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
import struct
import zlib
from collections.abc import Callable

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import PYDICOM_ROOT_UID, UID, generate_uid

from exporter.config.storable import (
    STORE_TRANSFER_SYNTAXES,
    SUPPORTED_STORE_CLASSES,
    store_sop_class_problem,
    store_transfer_syntax_problem,
)

__all__ = [
    "STORE_TRANSFER_SYNTAXES", "SUPPORTED_STORE_CLASSES", "encode_for", "stable_uid",
    "store_sop_class_problem", "store_transfer_syntax_problem", "synthetic_instance",
]

PATIENT_NAME = "ZZTEST^DICOM EXPORTER"
PATIENT_ID = "ZZ-DICOM-EXPORTER-TEST"
MARK = "SYNTETISKT TESTOBJEKT - INGEN PATIENT - dicom-exporter"

ROWS = COLUMNS = 8
BITS_STORED = 12
# A ramp 0..4032 in steps of 64: distinct values whose two bytes differ, so a
# byte-order mistake shows in the pixels.
PIXELS: tuple[int, ...] = tuple(64 * i for i in range(ROWS * COLUMNS))


def encode_for(dataset: Dataset, transfer_syntax_uid: str) -> bytes:
    """The dataset encoded as the C-STORE data set in `transfer_syntax_uid`.

    No file meta, no preamble: exactly what goes into P-DATA. Raises
    ValueError for a transfer syntax the native pixels cannot be sent in.
    """
    problem = store_transfer_syntax_problem(transfer_syntax_uid)
    if problem is not None:
        raise ValueError(problem)
    ts = UID(transfer_syntax_uid)
    out = dataset
    if not ts.is_little_endian and "PixelData" in dataset and dataset.BitsAllocated > 8:
        # pydicom writes OW bytes as they are; ours are little endian in memory.
        out = copy.deepcopy(dataset)  # tiny; never touch the caller's dataset
        out.PixelData = _swap_words(dataset.PixelData, dataset.BitsAllocated)
        out["PixelData"].VR = "OW"
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = ts.is_implicit_VR, ts.is_little_endian
    write_dataset(fp, out)
    encoded = fp.getvalue()
    if ts.is_deflated:
        compressor = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
        encoded = compressor.compress(encoded) + compressor.flush()
        # PS3.5 A.5: an odd-length deflated stream gets one trailing NUL, since
        # every PDV fragment has even length (dcmtk aborts on an odd one).
        if len(encoded) % 2:
            encoded += b"\x00"
    return encoded


def _swap_words(data: bytes, bits_allocated: int) -> bytes:
    size = bits_allocated // 8
    swapped = bytearray(len(data))
    for start in range(size):
        swapped[start::size] = data[size - 1 - start :: size]
    return bytes(swapped)


def _keyword_and_uid(sop_class: str) -> tuple[str, str]:
    problem = store_sop_class_problem(sop_class)
    if problem is not None:
        raise ValueError(problem)
    for keyword, uid in SUPPORTED_STORE_CLASSES.items():
        if sop_class in (keyword, uid):
            return keyword, uid
    raise AssertionError("unreachable")  # pragma: no cover


def stable_uid(prefix: str, *parts: str) -> str:
    """A UID fixed for (prefix, parts): the same study on every probe.

    One JSON string as entropy, since generate_uid joins its sources with no
    separator (("ab", "c") and ("a", "bc") must not collide).
    """
    return str(generate_uid(prefix, entropy_srcs=[json.dumps(["dicom-exporter", *parts])]))


def side_for(size: int) -> int:
    """Rows and columns of a square image whose 16-bit pixels take at least
    `size` bytes; never below the 8x8 default."""
    return max(ROWS, math.isqrt(max(size - 1, 0) // 2) + 1) if size > 2 * ROWS * COLUMNS \
        else ROWS


def synthetic_instance(target_name: str, sop_class: str, uid_root: str | None,
                       size: int = 0) -> Dataset:
    """A fresh, valid test instance of `sop_class` (keyword or UID) for `target_name`.

    `uid_root` is the UID prefix (digits and dots ending in '.'); None means
    pydicom's own root. `size` is the least number of bytes of pixel data
    (the module's test_object_size): 0 is the 8x8 image; a larger one is a
    square image of the same ramp, repeated. Raises ValueError for an
    unsupported SOP class.
    """
    keyword, sop_class_uid = _keyword_and_uid(sop_class)
    prefix = PYDICOM_ROOT_UID if uid_root is None else uid_root
    now = datetime.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")

    ds = Dataset()
    # SOP Common
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = generate_uid(prefix)
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    # Patient: no real patient, a self-describing test one
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    # General Study
    ds.StudyInstanceUID = stable_uid(prefix, "study", target_name)
    ds.StudyDate, ds.StudyTime = date, time
    ds.ReferringPhysicianName = ""
    ds.StudyID = "ZZTEST"
    ds.AccessionNumber = "ZZTEST"
    ds.StudyDescription = MARK
    # General Series
    ds.SeriesInstanceUID = stable_uid(prefix, "series", target_name, keyword)
    ds.SeriesNumber = 9999
    ds.SeriesDate, ds.SeriesTime = date, time
    ds.SeriesDescription = MARK
    ds.Laterality = ""  # type 2C: no paired body part, so empty
    # General Equipment
    ds.Manufacturer = "dicom-exporter"
    ds.ManufacturerModelName = "synthetic test object"
    # General Image
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = date, time
    ds.ImageComments = MARK
    ds.BurnedInAnnotation = "NO"
    # Image Pixel: 8x8 (or larger, see `size`), 16-bit, MONOCHROME2
    side = side_for(size)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = side, side
    ds.BitsAllocated = 16
    ds.BitsStored = BITS_STORED
    ds.HighBit = BITS_STORED - 1
    ds.PixelRepresentation = 0
    ramp = struct.pack(f"<{len(PIXELS)}H", *PIXELS)  # 64*64 = 4096: the ramp repeats whole
    ds.PixelData = (ramp * -(-side * side // len(PIXELS)))[: 2 * side * side]
    ds["PixelData"].VR = "OW"

    _MODALITY[keyword](ds, prefix, target_name, keyword)
    return ds


def _secondary_capture(ds: Dataset, prefix: str, target_name: str, keyword: str) -> None:
    ds.Modality = "OT"
    ds.PatientOrientation = ""  # type 2C: no image plane, orientation unknown
    ds.ConversionType = "SYN"  # SC Equipment: synthetic image
    ds.WindowCenter, ds.WindowWidth = 2048, 4096


def _cross_sectional(ds: Dataset, prefix: str, target_name: str, keyword: str) -> None:
    """Frame of Reference and Image Plane, shared by CT and MR."""
    ds.PatientPosition = "HFS"
    ds.FrameOfReferenceUID = stable_uid(prefix, "frame-of-reference", target_name, keyword)
    ds.PositionReferenceIndicator = ""
    ds.PixelSpacing = [1, 1]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    corner = -(ds.Rows - 1) / 2  # the image centred on the origin: -3.5 for 8x8
    ds.ImagePositionPatient = [corner, corner, 0]
    ds.SliceThickness = 1
    ds.SliceLocation = 0
    ds.AcquisitionNumber = 1


def _ct(ds: Dataset, prefix: str, target_name: str, keyword: str) -> None:
    ds.Modality = "CT"
    _cross_sectional(ds, prefix, target_name, keyword)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.KVP = 120
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter, ds.WindowWidth = 1000, 4096  # in HU, after rescale


def _mr(ds: Dataset, prefix: str, target_name: str, keyword: str) -> None:
    ds.Modality = "MR"
    _cross_sectional(ds, prefix, target_name, keyword)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = 500
    ds.EchoTime = 20
    ds.EchoTrainLength = 1
    ds.MagneticFieldStrength = 1.5
    ds.WindowCenter, ds.WindowWidth = 2048, 4096


_MODALITY: dict[str, Callable[[Dataset, str, str, str], None]] = {
    "CTImageStorage": _ct,
    "MRImageStorage": _mr,
    "SecondaryCaptureImageStorage": _secondary_capture,
}
