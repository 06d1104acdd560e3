"""Tests of the synthetic store test object.

The dciodvfy tests need `dciodvfy` (Debian package dicom3tools) on PATH and
fail, not skip, without it. dciodvfy writes its report to stderr: the first
line names the IOD it checked against (e.g. "CTImage"), then one line per
finding starting "Error - " or "Warning - ". It cannot read Deflated Explicit
VR Little Endian (the Debian build has no zlib), so that syntax is checked by
round-tripping through pydicom and zlib instead.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pydicom
import pynetdicom.sop_class
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    PYDICOM_ROOT_UID,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from exporter.dicom import testobject
from exporter.dicom.testobject import (
    MARK,
    PATIENT_ID,
    PATIENT_NAME,
    PIXELS,
    STORE_TRANSFER_SYNTAXES,
    SUPPORTED_STORE_CLASSES,
    encode_for,
    store_sop_class_problem,
    store_transfer_syntax_problem,
    synthetic_instance,
)

CLASSES = sorted(SUPPORTED_STORE_CLASSES)
IOD_NAMES = {
    "CTImageStorage": "CTImage",
    "MRImageStorage": "MRImage",
    "SecondaryCaptureImageStorage": "SCImage",
}
MODALITIES = {"CTImageStorage": "CT", "MRImageStorage": "MR", "SecondaryCaptureImageStorage": "OT"}
# Syntaxes dciodvfy can read: all ours but deflated.
DCIODVFY_SYNTAXES = [ts for ts in STORE_TRANSFER_SYNTAXES if not UID(ts).is_deflated]
ROOT = "1.2.826.0.1.3680043.9.9999."  # a site root, as config's uid_root
LONG_ROOT = "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16."  # config allows up to 40 chars
UID_PATTERN = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


# --- helpers -----------------------------------------------------------------


def part10(dataset: Dataset, transfer_syntax: str) -> bytes:
    """A DICOM Part 10 file: preamble, DICM, file meta, then encode_for's bytes."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, meta, enforce_standard=True)
    return fp.getvalue() + encode_for(dataset, transfer_syntax)


@pytest.fixture(scope="session")
def dciodvfy() -> str:
    path = shutil.which("dciodvfy")
    if path is None:
        pytest.fail(
            "dciodvfy not found on PATH: install Debian package dicom3tools "
            "(apt-get install -y dicom3tools); these tests must not be skipped"
        )
    return path


def run_dciodvfy(dciodvfy: str, path: Path) -> tuple[list[str], subprocess.CompletedProcess]:
    run = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, timeout=60)
    return (run.stdout + run.stderr).splitlines(), run


# --- dciodvfy --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("transfer_syntax", DCIODVFY_SYNTAXES, ids=lambda ts: UID(ts).keyword)
@pytest.mark.parametrize("keyword", CLASSES)
def test_dciodvfy_finds_no_errors(dciodvfy, tmp_path, keyword, transfer_syntax):
    path = tmp_path / f"{keyword}.dcm"
    path.write_bytes(part10(synthetic_instance("pacs-a", keyword, ROOT), transfer_syntax))

    lines, run = run_dciodvfy(dciodvfy, path)

    report = "\n".join(lines)
    # It recognised the object as the IOD we meant (guards against a silent misread).
    assert lines and lines[0] == IOD_NAMES[keyword], report
    assert [line for line in lines if "Error" in line] == [], report
    assert run.returncode == 0, report
    warnings = [line for line in lines if line.startswith("Warning")]
    name = UID(transfer_syntax).keyword
    print(f"{keyword} {name}: {len(warnings)} warning(s)", *warnings, sep="\n  ")


@pytest.mark.slow
def test_dciodvfy_output_format_is_what_we_parse(dciodvfy, tmp_path):
    """A broken object must give "Error" lines, or the test above proves nothing."""
    dataset = synthetic_instance("pacs-a", "CTImageStorage", ROOT)
    del dataset.ImageType, dataset.FrameOfReferenceUID
    path = tmp_path / "broken.dcm"
    path.write_bytes(part10(dataset, ExplicitVRLittleEndian))

    lines, run = run_dciodvfy(dciodvfy, path)

    errors = [line for line in lines if line.startswith("Error - ")]
    assert any("ImageType" in line for line in errors), lines
    assert any("FrameOfReferenceUID" in line for line in errors), lines
    assert run.returncode != 0


# --- UIDs: fresh instance, stable study / series -------------------------------------


@pytest.mark.parametrize("keyword", CLASSES)
def test_fresh_sop_instance_uid_per_call(keyword):
    uids = {synthetic_instance("pacs-a", keyword, ROOT).SOPInstanceUID for _ in range(20)}
    assert len(uids) == 20


@pytest.mark.parametrize("root", [ROOT, None, LONG_ROOT])
@pytest.mark.parametrize("keyword", CLASSES)
def test_stable_study_series_and_frame_per_target(keyword, root):
    first, second = (synthetic_instance("pacs-a", keyword, root) for _ in range(2))
    other = synthetic_instance("pacs-b", keyword, root)
    for name in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        if name in first:
            assert first[name].value == second[name].value, name
            assert first[name].value != other[name].value, name


def test_one_study_per_target_one_series_per_class():
    objects = {keyword: synthetic_instance("pacs-a", keyword, ROOT) for keyword in CLASSES}
    assert len({ds.StudyInstanceUID for ds in objects.values()}) == 1
    # A series holds one modality, so each class has its own series.
    assert len({ds.SeriesInstanceUID for ds in objects.values()}) == len(CLASSES)
    ct, mr = objects["CTImageStorage"], objects["MRImageStorage"]
    assert ct.FrameOfReferenceUID != mr.FrameOfReferenceUID


def test_uids_are_not_ambiguous_in_target_name():
    # generate_uid joins entropy sources without a separator; ours must not collide.
    a = synthetic_instance("ab", "CTImageStorage", ROOT)
    b = synthetic_instance("a", "CTImageStorage", ROOT)
    assert a.StudyInstanceUID != b.StudyInstanceUID


@pytest.mark.parametrize("root", [ROOT, None, LONG_ROOT])
@pytest.mark.parametrize("keyword", CLASSES)
def test_uids_are_valid_and_under_the_root(keyword, root):
    dataset = synthetic_instance("pacs-a", keyword, root)
    prefix = PYDICOM_ROOT_UID if root is None else root
    for element in dataset:
        if element.VR == "UI":
            uid = str(element.value)
            assert len(uid) <= 64 and UID_PATTERN.match(uid), (element.keyword, uid)
            if element.keyword != "SOPClassUID":
                assert uid.startswith(prefix), (element.keyword, uid)


def test_stable_uids_are_pinned():
    """A change here moves every target's test study to a new one: do it on purpose."""
    study = "1.2.826.0.1.3680043.9.9999.6778610452092532020359159714963039555"
    assert testobject.stable_uid(ROOT, "study", "pacs-a") == study
    instance = synthetic_instance("pacs-a", "SecondaryCaptureImageStorage", ROOT)
    assert instance.StudyInstanceUID == study


# --- no real patient data ------------------------------------------------------------


@pytest.mark.parametrize("keyword", CLASSES)
def test_marked_as_synthetic_with_no_patient_data(keyword):
    dataset = synthetic_instance("pacs-a", keyword, ROOT)
    assert PATIENT_NAME == "ZZTEST^DICOM EXPORTER"
    assert PATIENT_ID == "ZZ-DICOM-EXPORTER-TEST"
    assert dataset.PatientName == PATIENT_NAME
    assert dataset.PatientID == PATIENT_ID
    assert "SYNTETISKT TESTOBJEKT" in MARK
    assert dataset.StudyDescription == MARK
    assert dataset.SeriesDescription == MARK
    assert dataset.ImageComments == MARK
    assert dataset.PatientBirthDate == ""
    assert dataset.PatientSex == "O"
    assert dataset.Modality == MODALITIES[keyword]
    # Every person name is ours or empty; no other identifying attributes at all.
    names = {str(e.value) for e in dataset if e.VR == "PN" and e.value}
    assert names == {PATIENT_NAME}
    for absent in (
        "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames", "PatientAddress",
        "PatientAge", "PatientSize", "PatientWeight", "PatientMotherBirthName",
        "PatientTelephoneNumbers", "IssuerOfPatientID", "InstitutionName", "InstitutionAddress",
        "PerformingPhysicianName", "OperatorsName", "StationName", "DeviceSerialNumber",
    ):
        assert absent not in dataset, absent
    # Nothing private.
    assert not [e for e in dataset if e.tag.is_private]


# --- SOP classes ---------------------------------------------------------------------


def test_supported_classes_use_the_standard_keywords():
    assert {"CTImageStorage", "MRImageStorage", "SecondaryCaptureImageStorage"} <= set(
        SUPPORTED_STORE_CLASSES
    )
    for keyword, uid in SUPPORTED_STORE_CLASSES.items():
        assert UID(uid).keyword == keyword
        assert getattr(pynetdicom.sop_class, keyword) == uid


@pytest.mark.parametrize("keyword", CLASSES)
def test_class_by_keyword_or_uid(keyword):
    by_uid = synthetic_instance("pacs-a", SUPPORTED_STORE_CLASSES[keyword], ROOT)
    by_keyword = synthetic_instance("pacs-a", keyword, ROOT)
    assert by_uid.SOPClassUID == by_keyword.SOPClassUID == SUPPORTED_STORE_CLASSES[keyword]
    assert store_sop_class_problem(keyword) is None
    assert store_sop_class_problem(SUPPORTED_STORE_CLASSES[keyword]) is None


@pytest.mark.parametrize(
    "sop_class", ["XAImageStorage", "1.2.840.10008.5.1.4.1.1.12.1", "nonsense"])
def test_unsupported_class_is_refused(sop_class):
    problem = store_sop_class_problem(sop_class)
    assert problem is not None and "SecondaryCaptureImageStorage" in problem
    with pytest.raises(ValueError):
        synthetic_instance("pacs-a", sop_class, ROOT)


# --- transfer syntaxes and encode_for ----------------------------------------------


def test_store_transfer_syntaxes_are_the_uncompressed_ones():
    assert set(STORE_TRANSFER_SYNTAXES) == {
        ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian,
        DeflatedExplicitVRLittleEndian,
    }
    for ts in STORE_TRANSFER_SYNTAXES:
        assert store_transfer_syntax_problem(ts) is None


@pytest.mark.parametrize(
    "uid",
    [
        JPEGBaseline8Bit,
        "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
        "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
        "1.2.840.10008.1.2.5",  # RLE
        "1.2.840.10008.1.2.1.98",  # Encapsulated Uncompressed Explicit VR LE
        "1.2.840.10008.1.2.4.95",  # JPIP Referenced Deflate
    ],
    ids=lambda uid: UID(uid).keyword or str(uid),
)
def test_compressed_syntaxes_are_refused(uid):
    problem = store_transfer_syntax_problem(uid)
    assert problem is not None and "compressed" in problem
    with pytest.raises(ValueError, match="compressed"):
        encode_for(synthetic_instance("pacs-a", "CTImageStorage", ROOT), uid)


@pytest.mark.parametrize("uid", ["1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5", "nonsense", ""])
def test_non_transfer_syntaxes_are_refused(uid):
    problem = store_transfer_syntax_problem(uid)
    assert problem is not None and "not a known transfer syntax" in problem
    with pytest.raises(ValueError):
        encode_for(synthetic_instance("pacs-a", "CTImageStorage", ROOT), uid)


def _pixels(dataset: Dataset) -> tuple[int, ...]:
    order = "<" if dataset.file_meta.TransferSyntaxUID.is_little_endian else ">"
    return struct.unpack(f"{order}{dataset.Rows * dataset.Columns}H", dataset.PixelData)


@pytest.mark.parametrize("transfer_syntax", STORE_TRANSFER_SYNTAXES, ids=lambda ts: UID(ts).keyword)
@pytest.mark.parametrize("keyword", CLASSES)
def test_encode_for_round_trips_through_pydicom(tmp_path, keyword, transfer_syntax):
    original = synthetic_instance("pacs-a", keyword, ROOT)
    path = tmp_path / "object.dcm"
    path.write_bytes(part10(original, transfer_syntax))

    read = pydicom.dcmread(path)

    ts = UID(transfer_syntax)
    assert read.file_meta.TransferSyntaxUID == ts
    assert read.original_encoding == (ts.is_implicit_VR, ts.is_little_endian)
    assert _pixels(read) == PIXELS  # byte order right, also in big endian
    for element in original:
        if element.keyword != "PixelData":
            assert read[element.tag].value == element.value, element.keyword


@pytest.mark.parametrize("transfer_syntax", STORE_TRANSFER_SYNTAXES, ids=lambda ts: UID(ts).keyword)
def test_encode_for_leaves_the_dataset_alone(transfer_syntax):
    dataset = synthetic_instance("pacs-a", "CTImageStorage", ROOT)
    before = dataset.PixelData
    encode_for(dataset, transfer_syntax)
    assert dataset.PixelData == before
    assert struct.unpack(f"<{len(PIXELS)}H", dataset.PixelData) == PIXELS


def test_encodings_really_differ():
    dataset = synthetic_instance("pacs-a", "MRImageStorage", ROOT)
    explicit = encode_for(dataset, ExplicitVRLittleEndian)
    implicit = encode_for(dataset, ImplicitVRLittleEndian)
    big = encode_for(dataset, ExplicitVRBigEndian)
    deflated = encode_for(dataset, DeflatedExplicitVRLittleEndian)
    # First element (0008,0008) Image Type, "ORIGINAL\\PRIMARY\\OTHER" (22 bytes):
    # explicit VR carries "CS" and a 2-byte length, implicit a 4-byte length.
    assert explicit.startswith(b"\x08\x00\x08\x00CS\x16\x00ORIGINAL")
    assert implicit.startswith(b"\x08\x00\x08\x00\x16\x00\x00\x00ORIGINAL")
    assert big.startswith(b"\x00\x08\x00\x08CS\x00\x16ORIGINAL")
    # Deflated: raw deflate (no zlib header) of the explicit little endian bytes.
    assert zlib.decompress(deflated, -zlib.MAX_WBITS) == explicit


@pytest.mark.parametrize("transfer_syntax", STORE_TRANSFER_SYNTAXES, ids=lambda ts: UID(ts).keyword)
@pytest.mark.parametrize("keyword", CLASSES)
def test_encode_for_decodes_like_a_pynetdicom_receiver(keyword, transfer_syntax):
    from io import BytesIO

    from pynetdicom.dsutils import decode

    ts = UID(transfer_syntax)
    original = synthetic_instance("pacs-a", keyword, ROOT)
    received = decode(
        BytesIO(encode_for(original, ts)), ts.is_implicit_VR, ts.is_little_endian, ts.is_deflated
    )
    order = "<" if ts.is_little_endian else ">"
    assert struct.unpack(f"{order}{len(PIXELS)}H", received.PixelData) == PIXELS
    assert received.SOPInstanceUID == original.SOPInstanceUID
    assert received.SOPClassUID == SUPPORTED_STORE_CLASSES[keyword]


def test_deflated_data_sets_are_padded_to_even_length():
    """PS3.5 A.5; dcmtk's storescp aborts on an odd fragment ("Odd Fragment Length")."""
    lengths = set()
    for _ in range(40):  # the deflated length depends on the fresh instance UID
        dataset = synthetic_instance("pacs-a", "CTImageStorage", ROOT)
        encoded = encode_for(dataset, DeflatedExplicitVRLittleEndian)
        assert len(encoded) % 2 == 0
        explicit = encode_for(dataset, ExplicitVRLittleEndian)
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        assert inflater.decompress(encoded) == explicit
        lengths.add(len(inflater.unused_data))
    assert lengths == {0, 1}, "no instance needed the pad byte: the test proves nothing"


# --- the config refuses what the store cannot send ------------------------------------


def test_store_config_refuses_other_sop_classes_and_compressed_syntaxes():
    from exporter.config import ConfigError
    from tests.support.configs import make_config

    with pytest.raises(ConfigError) as caught:
        make_config({"peer": {"port": 104, "ae_title": "PEER", "modules": ["store"]}}, {
            "store": {"prober": "store", "sop_classes": ["DigitalXRayImageStorageForPresentation"],
                      "transfer_syntaxes": ["ExplicitVRLittleEndian", "JPEGBaseline8Bit"]}})
    assert caught.value.problems == [
        "test.yml: modules.store.sop_classes[0]: the store prober has no test object for "
        "SOP class 'DigitalXRayImageStorageForPresentation'; supported: CTImageStorage, "
        "MRImageStorage, SecondaryCaptureImageStorage",
        "test.yml: modules.store.transfer_syntaxes[1]: JPEG Baseline (Process 1) "
        "(1.2.840.10008.1.2.4.50) is compressed/encapsulated, but the store test object has "
        "native pixels; use one of: ImplicitVRLittleEndian, ExplicitVRLittleEndian, "
        "ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian",
    ]


def test_negotiate_may_still_propose_any_class_and_compressed_syntaxes():
    from tests.support.configs import make_config

    config = make_config({"peer": {"port": 104, "ae_title": "PEER", "modules": ["negotiate"]}}, {
        "negotiate": {"prober": "negotiate",
                      "sop_classes": ["DigitalXRayImageStorageForPresentation"],
                      "transfer_syntaxes": ["JPEGBaseline8Bit"]}})
    assert config.modules["negotiate"].transfer_syntaxes == ("1.2.840.10008.1.2.4.50",)


@pytest.mark.parametrize("keyword", CLASSES)
def test_store_config_accepts_every_supported_class(keyword):
    from tests.support.configs import make_config

    config = make_config({"peer": {"port": 104, "ae_title": "PEER", "modules": ["store"]}}, {
        "store": {"prober": "store", "sop_classes": [keyword],
                  "transfer_syntaxes": [UID(ts).keyword for ts in STORE_TRANSFER_SYNTAXES]}})
    assert config.modules["store"].sop_classes == ((keyword, SUPPORTED_STORE_CLASSES[keyword]),)
