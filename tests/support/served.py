"""An exporter whose one target is an in-process scripted peer, served on
loopback: the setting of the HTTP attack tests. The fixtures are named `peer`
and `served` for the tests; a module imports them under the functions' names,
so its own variables called peer shadow nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exporter.app import Exporter, ProbeLimits
from exporter.web import server as web_server
from tests.support.configs import make_config
from tests.support.hostile import ScriptedPeer
from tests.support.loopback import LOOPBACK


def exporter_with_peer(peer: ScriptedPeer, limits: ProbeLimits | None = None) -> Exporter:
    return Exporter(make_config({"peer": {"port": peer.port, "ae_title": "PEER",
                                          "modules": ["tcp", "echo"]}}), limits=limits)


@pytest.fixture(name="peer")
def silent_peer() -> Iterator[ScriptedPeer]:
    """A peer that accepts and says nothing."""
    with ScriptedPeer(lambda p, conn: None) as listening:
        yield listening


@pytest.fixture(name="served")
def served_exporter(peer: ScriptedPeer) -> Iterator[web_server.Server]:
    server, _ = web_server.start(exporter_with_peer(peer), (LOOPBACK, 0))
    yield server
    server.shutdown()
    server.server_close()
