"""systemd's readiness notification (sd_notify), without a library.

With `Type=notify` systemd waits for READY=1 before it counts the service as
started, and so before it sends the first `systemctl reload` (SIGHUP): the
exporter says READY=1 once its config is loaded and its listeners are bound.
The protocol is one datagram to the AF_UNIX socket named in $NOTIFY_SOCKET
(a leading `@` is the abstract namespace); outside systemd the variable is
unset and this does nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket


def send(message: str) -> bool:
    """Send one notification; False when not under systemd or it could not be sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address or address[0] not in "/@":
        return False
    target = "\0" + address[1:] if address[0] == "@" else address
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(target)
        sock.sendall(message.encode())
        return True
    return False


def ready() -> bool:
    return send("READY=1\nSTATUS=serving")
