"""Connect, associate, hand over, then release, or abort on any failure.

Shared by the DICOM probers so that every one of them releases in the same
way, aborts in the same way and times its phases in the same way.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager

from exporter.dicom import dimse_status
from exporter.dicom.association import UpperLayer
from exporter.dicom.codec import VERIFICATION, ContextSpec, DimseResponse
from exporter.dicom.failure import ProbeFailure, timed
from exporter.dicom.timed_io import connect_duration
from exporter.dicom.transport import connect, resolve, start_tls
from exporter.probers.context import ProbeContext
from exporter.probers.report import ProbeReport
from exporter.reasons import Reason


def open_socket(context: ProbeContext, report: ProbeReport,
                handshake: bool = False) -> socket.socket:
    """Connect; with `handshake`, also start TLS when the target has a tls block."""
    target = context.target
    started = time.perf_counter()
    try:
        family, address = resolve(target.host, target.port, context.deadline)
    except ProbeFailure as failure:
        failure.phase = "dns"
        raise
    finally:
        report.dns_lookup = time.perf_counter() - started
    context.note("connecting to %s port %s", address[0], address[1])
    started = time.perf_counter()
    with timed(report.phases, "connect"):  # a failed connect: the time until it failed
        sock = connect(family, address, context.deadline)
    # A connect that succeeded: the kernel's handshake round trip, not our clock.
    report.phases["connect"] = connect_duration(sock, time.perf_counter() - started)
    context.note("connected")
    if handshake and target.tls is not None:
        with timed(report.phases, "tls"):
            sock = start_tls(sock, target.tls, context.deadline)
        report.tls_version = sock.version() or ""
        certificate = sock.getpeercert()  # empty unless verified
        if certificate and "notAfter" in certificate:
            report.tls_expiry = ssl.cert_time_to_seconds(str(certificate["notAfter"]))
        context.note("TLS %s with %s", report.tls_version, target.tls.server_name)
    return sock


@contextmanager
def association(
    context: ProbeContext, report: ProbeReport, contexts: tuple[ContextSpec, ...]
) -> Iterator[UpperLayer]:
    sock = open_socket(context, report, handshake=True)
    layer = UpperLayer(sock, context.deadline, registry=context.state.associations)
    module, target = context.module, context.target
    try:
        calling = target.probe_calling_ae or module.calling_ae_title
        context.note("A-ASSOCIATE-RQ calling %r called %r, %d presentation context(s)",
                    calling, target.ae_title, len(contexts))
        try:
            accepted = layer.associate(calling, target.ae_title, contexts)
        except ProbeFailure as failure:
            raise _named(failure, contexts) from None
        report.peer = accepted
        report.contexts = accepted.contexts
        context.note("A-ASSOCIATE-AC from %s, %d context(s) accepted",
                    accepted.implementation_version_name or "unknown",
                    sum(cx.accepted for cx in accepted.contexts))
        yield layer
        layer.release()
        context.note("released")
    except ProbeFailure as failure:
        if failure.reason not in (
            Reason.ABORTED,
            Reason.REJECTED_CALLED_AE,
            Reason.REJECTED_CALLING_AE,
            Reason.REJECTED_OTHER,
        ):
            layer.abort()
            context.note("sent A-ABORT")
        raise
    except BaseException:
        layer.abort()
        raise
    finally:
        report.phases.update(layer.phases)
        layer.forget()
        context.tidy(layer.io.close)


# PS3.8 Table 9-18: why a presentation context was not accepted.
_REFUSALS = {
    1: "refused by the peer's user (its configuration)",
    2: "refused, no reason given",
    3: "the SOP class (abstract syntax) is not supported",
    4: "none of the proposed transfer syntaxes is supported",
}
_NO_REASON = 1  # A-ASSOCIATE-RJ reason/diagnostic 1: "no reason given", every source


def refusal(report: ProbeReport, abstract_syntax: str) -> str:
    """Why the peer did not accept the context for `abstract_syntax`: the SOP
    class or the transfer syntax, which are different fixes at the partner."""
    for cx in report.contexts:
        if cx.abstract_syntax == abstract_syntax and not cx.accepted:
            return f"{_REFUSALS.get(cx.result, 'refused')} (result {cx.result})"
    return "not in the answer"


def _named(failure: ProbeFailure, contexts: tuple[ContextSpec, ...]) -> ProbeFailure:
    """A rejection that points at its real fault where ours can tell more."""
    if failure.reason is Reason.REJECTED_CALLING_AE:
        failure.detail += ("; the peer does not know our AE title, or not from this address "
                           "(some peers, e.g. Orthanc, also check the calling host)")
    elif (failure.reason is Reason.REJECTED_OTHER and failure.reject is not None
          and failure.reject[2] == _NO_REASON
          and all(uid == VERIFICATION for _, uid, _ in contexts)):
        # We proposed nothing but Verification: a peer without it has nothing to
        # accept, and some (dcmtk's dcmrecv with a storage-only profile) say so
        # this way; a peer that refuses everyone (storescp --refuse) says the same,
        # so the reason stays and the detail names both.
        failure.detail += (", after we proposed only Verification: the peer may not offer "
                           "Verification (C-ECHO; try negotiate), or it refuses every "
                           "association")
    return failure


def check_status(context: ProbeContext, report: ProbeReport, response: DimseResponse,
                 what: str) -> None:
    """Record the status; anything but success ends the probe with its class."""
    report.status = response.status
    comment = f" ({response.error_comment})" if response.error_comment else ""
    context.note("%s status 0x%04X%s", what, response.status, comment)
    reason = dimse_status.failure_reason(response.status)
    if reason is not None:
        raise ProbeFailure(
            reason, f"{what} status 0x{response.status:04X}{comment}", status=response.status,
            phase="dimse",
        )
