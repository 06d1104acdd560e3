"""Starting the DICOM listener for `serve`: bound, wired to the running exporter.

The listener (`dicom.listener`) takes its peers from the exporter's current
config at every association, so a reload that adds or removes a commit
module changes who may report without a restart; its counters join the
exporter's runtime metrics. Without `--dicom.listen-address` nothing listens,
and a config with `verify: commit` modules gets one warning: their reports
can then only come on the probe's own association.
"""

from __future__ import annotations

import logging

from exporter.app import Exporter
from exporter.dicom.listener import DicomListener, commitment_peers
from exporter.metrics import ListenerCollector

logger = logging.getLogger("dicom_exporter")


class ListenerError(RuntimeError):
    """The listener cannot start (address in use, not ours): serve exits 1."""


def start_listener(exporter: Exporter, address: tuple[str, int] | None,
                   max_associations: int) -> DicomListener | None:
    """The running listener, or None (not configured: a warning if it is needed)."""
    if address is None:
        if commitment_peers(exporter.config).calling:
            logger.warning("verify: commit modules without a DICOM listener", extra={"fields": {
                "detail": "a peer that sends its Storage Commitment report on a new "
                          "association (Orthanc does) cannot reach us; start with "
                          "--dicom.listen-address"}})
        return None
    try:
        listener = DicomListener(address[0], address[1], exporter.prober_state.commitments,
                                 lambda: commitment_peers(exporter.config), max_associations)
    except OSError as exc:
        raise ListenerError(f"cannot listen for DICOM on {address[0]}:{address[1]}: "
                            f"{exc.strerror or exc}") from None
    exporter.runtime.register(ListenerCollector(listener))
    listener.start()
    logger.info("DICOM listener for Storage Commitment reports", extra={"fields": {
        "address": f"{listener.address[0]}:{listener.port}",
        "max_associations": max_associations}})
    return listener
