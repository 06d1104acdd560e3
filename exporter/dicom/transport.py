"""Sockets for a probe: name resolution, TCP connect and TLS, each within the deadline.

Every OS error is turned into the ProbeFailure that names it, so the layers
above see a classified reason, never an exception from the socket module.
"""

from __future__ import annotations

import errno
import functools
import socket
import ssl
import threading
from typing import Any

from exporter.config.target_tls import TargetTLS
from exporter.dicom.failure import Deadline, ProbeFailure
from exporter.dicom.timed_io import TLSSocket, handshake, tls_socket
from exporter.reasons import Reason


def _connect_failure(exc: OSError) -> ProbeFailure:
    if isinstance(exc, ConnectionRefusedError):
        return ProbeFailure(Reason.REFUSED, "connection refused")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return ProbeFailure(Reason.CONNECT_TIMEOUT, "no answer to TCP connect")
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
        return ProbeFailure(Reason.UNREACHABLE, exc.strerror or str(exc))
    return ProbeFailure(Reason.RESET, f"connect failed: {exc}")


# Lookups that may be waiting on a resolver at once. getaddrinfo cannot be
# cancelled, so a lookup that outlives its probe finishes in its thread; the
# bound keeps a hanging resolver from piling up threads.
MAX_PENDING_LOOKUPS = 16
_lookups = threading.BoundedSemaphore(MAX_PENDING_LOOKUPS)


def _first(infos: list[Any]) -> tuple[int, tuple[Any, ...]] | None:
    """IPv4 first, as a DICOM peer is usually listed."""
    for family, _, _, _, address in infos:
        if family == socket.AF_INET:
            return family, address
    return (infos[0][0], infos[0][4]) if infos else None


@functools.lru_cache(maxsize=1024)
def _numeric(host: str, port: int) -> tuple[int, tuple[Any, ...]] | None:
    """An address literal needs no resolver: worked out once, no thread. The
    configured hosts bound the cache; a name caches its None."""
    try:
        return _first(socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST))
    except (socket.gaierror, UnicodeError, ValueError):
        return None


def _lookup(host: str, port: int, deadline: Deadline) -> list[Any]:
    """getaddrinfo bounded by the deadline (it has no timeout of its own)."""
    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError, ValueError) as exc:
            outcome.append(exc)
        finally:
            _lookups.release()
            done.set()

    done = threading.Event()
    if not _lookups.acquire(timeout=max(deadline.remaining(), 0.0)):
        raise ProbeFailure(Reason.DNS, f"no lookup slot for {host!r}: resolver not answering")
    threading.Thread(target=work, name=f"resolve {host}", daemon=True).start()
    if not done.wait(max(deadline.remaining(), 0.0)):
        raise ProbeFailure(Reason.DNS, f"no answer resolving {host!r} within the deadline")
    answer = outcome[0]
    if isinstance(answer, BaseException):
        raise ProbeFailure(Reason.DNS, f"cannot resolve {host!r}: {answer}")
    return list(answer)


def resolve(host: str, port: int, deadline: Deadline) -> tuple[int, tuple[Any, ...]]:
    """Resolve to one address, IPv4 first, as a DICOM peer is usually listed."""
    found = _numeric(host, port) or _first(_lookup(host, port, deadline))
    if found is None:
        raise ProbeFailure(Reason.DNS, f"{host!r} resolves to no address")
    return found


def connect(family: int, address: tuple[Any, ...], deadline: Deadline) -> socket.socket:
    """TCP connect bounded by the deadline, with Nagle off.

    Without TCP_NODELAY a peer that delays its ACKs (dcmtk does) adds about
    40 ms to an exchange of small PDUs, which would drown what we measure.
    """
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        remaining = deadline.remaining()
        if remaining <= 0:
            raise ProbeFailure(Reason.CONNECT_TIMEOUT, "no time left to connect")
        sock.settimeout(remaining)
        sock.connect(address)
    except OSError as exc:
        sock.close()
        raise _connect_failure(exc) from None
    except BaseException:
        sock.close()
        raise
    return sock


def start_tls(sock: socket.socket, tls: TargetTLS, deadline: Deadline) -> TLSSocket:
    """TLS handshake bounded by the deadline; every failure is reason `tls`.

    The TLS runs in memory over the plain socket (timed_io.TLSSocket) so that
    the timed reads keep the kernel's receive stamps.
    """
    try:
        wrapped = tls_socket(sock, tls.context, tls.server_name)
    except (ssl.SSLError, OSError, ValueError) as exc:
        sock.close()
        raise ProbeFailure(Reason.TLS, f"cannot start TLS: {exc}") from None
    try:
        if deadline.remaining() <= 0:
            raise TimeoutError
        handshake(wrapped, deadline)
    except ssl.SSLCertVerificationError as exc:
        wrapped.close()
        raise ProbeFailure(Reason.TLS, f"peer certificate rejected: {exc.verify_message}") from None
    except TimeoutError:
        wrapped.close()
        raise ProbeFailure(Reason.TLS, "TLS handshake timed out") from None
    except (ssl.SSLError, OSError) as exc:
        wrapped.close()
        raise ProbeFailure(Reason.TLS, f"TLS handshake failed: {exc}") from None
    return wrapped
