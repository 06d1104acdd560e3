"""The synthetic DICOM object the store prober sends.

It must never be mistaken for a patient and must not pile up in a partner's
archive. So every object names itself a test in the patient and study fields
(patient name and ID start with ZZ, which sorts last in every PACS worklist),
carries no real patient data, and all objects sent to one target belong to
one stable study and series whose UIDs are derived from the UID root and the
target name: a partner finds and deletes them as one study. Only the SOP
Instance UID is fresh for each store, so each probe is a real new instance.
"""

from __future__ import annotations

import datetime
import hashlib

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

PATIENT_NAME = "ZZTEST^DICOM EXPORTER"
PATIENT_ID = "ZZ-DICOM-EXPORTER-TEST"
MARK = "SYNTETISKT TESTOBJEKT - INGEN PATIENT - dicom-exporter"


def stable_uid(root: str, target_name: str, kind: int) -> str:
    """A UID fixed for (root, target, kind): the same study on every probe."""
    digest = int.from_bytes(hashlib.sha256(target_name.encode()).digest()[:12], "big")
    return f"{root}{kind}.{digest}"[:64].rstrip(".")


def synthetic_instance(target_name: str, sop_class_uid: str, uid_root: str) -> Dataset:
    now = datetime.datetime.now()
    ds = Dataset()
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = generate_uid(prefix=uid_root)
    ds.StudyInstanceUID = stable_uid(uid_root, target_name, 1)
    ds.SeriesInstanceUID = stable_uid(uid_root, target_name, 2)
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyID = "ZZTEST"
    ds.AccessionNumber = "ZZTEST"
    ds.StudyDescription = MARK
    ds.SeriesDescription = MARK
    ds.ImageComments = MARK
    ds.ReferringPhysicianName = ""
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.Modality = "OT"
    ds.ConversionType = "SYN"
    ds.SeriesNumber = 9999
    ds.InstanceNumber = 1
    ds.BurnedInAnnotation = "NO"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(64)
    return ds
