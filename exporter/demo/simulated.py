"""Simulated DICOM peers on loopback: pynetdicom SCPs that can be switched.

Used by the demo (the README's first command) and by the tests that need a
peer to go down, come back or turn away our AE title on request. Every peer
listens on 127.0.0.1 only.
"""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

STATES = ("up", "down", "reject")
LOOPBACK = "127.0.0.1"


# How often a listener looks for a stop request. pynetdicom's own default
# (0.5 s) makes every peer switched down wait that long.
POLL_INTERVAL = 0.05
# pynetdicom's listener runs a full gc.collect() every 59 turns of its loop
# (about 30 s at its 0.5 s poll); kept at that pace, not ten times as often.
COLLECT_INTERVAL = 30.0


class _Listener(ThreadedAssociationServer):
    _last_collect: float | None = None

    def service_actions(self) -> None:
        now = time.monotonic()
        if self._last_collect is None:
            self._last_collect = now
        elif now - self._last_collect >= COLLECT_INTERVAL:
            self._last_collect = now
            gc.collect()  # pynetdicom's reason: finished association threads linger


def serve(ae: AE, address: tuple[str, int],
          handlers: list[tuple[Any, ...]] | None = None) -> ThreadedAssociationServer:
    """Start ``ae`` listening in a daemon thread, as ``AE.start_server(block=False)``
    does, but with a stop that returns within ``POLL_INTERVAL``."""
    server = ae.make_server(address, evt_handlers=handlers or [], server_class=_Listener)
    ae._servers.append(server)  # as start_server does: server.shutdown() removes it
    threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL,), daemon=True,
                     name=f"scp-{ae.ae_title}").start()
    return server


def _accept_store(event: evt.Event) -> int:
    """Accept and drop: a simulated peer keeps nothing, least of all data."""
    return 0x0000


@dataclass
class SimulatedPeer:
    name: str
    ae_title: str
    port: int = 0
    state: str = "down"
    # Calling AE titles accepted while up; empty: any.
    accepted_callers: tuple[str, ...] = ()
    _server: ThreadedAssociationServer | None = field(default=None, repr=False)
    _ae: AE = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        ae = AE(ae_title=self.ae_title)
        ae.require_called_aet = True
        ae.add_supported_context(Verification)
        for context in AllStoragePresentationContexts:
            if context.abstract_syntax is not None:
                ae.add_supported_context(context.abstract_syntax)
        ae.maximum_associations = 64
        self._ae = ae

    def set_state(self, state: str) -> None:
        """up: answers; down: port closed (refused); reject: calling AE refused."""
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}, use one of {', '.join(STATES)}")
        with self._lock:
            if state == "down":
                self._stop()
            else:
                # Only titles nobody uses are accepted while rejecting.
                accepted = ["NOT_ACCEPTED"] if state == "reject" else list(self.accepted_callers)
                self._ae.require_calling_aet = accepted
                if self._server is None:
                    self._start()
            self.state = state

    def accept_only(self, callers: tuple[str, ...]) -> None:
        """Accept only these calling AE titles (empty: any), as a PACS's AE list does."""
        self.accepted_callers = callers
        if self.state != "down":
            self.set_state(self.state)

    def _start(self) -> None:
        self._server = serve(self._ae, (LOOPBACK, self.port),
                             [(evt.EVT_C_STORE, _accept_store)])
        self.port = self._server.server_address[1]

    def _stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class PeerSet:
    """The simulated peers of one topology, by target name."""

    def __init__(self, peers: dict[str, SimulatedPeer]) -> None:
        self.peers = peers

    @classmethod
    def start(cls, ae_titles: dict[str, str]) -> PeerSet:
        peers = {name: SimulatedPeer(name, title) for name, title in ae_titles.items()}
        for peer in peers.values():
            peer.set_state("up")
        return cls(peers)

    def set_state(self, name: str, state: str) -> None:
        if name not in self.peers:
            raise KeyError(name)
        self.peers[name].set_state(state)

    def stop(self) -> None:
        for peer in self.peers.values():
            peer.set_state("down")
