"""Connections: a small pool of threads waits on one epoll; the thread an event
wakes reads the request whole and answers it itself.

Why not ThreadingHTTPServer: it gives every accepted connection a thread from
the first byte on, so 300 slowloris or idle clients hold 300 threads, and past
the file-descriptor limit accept() fails in a tight loop while real scrapes
time out. Here a connection costs a thread only while its complete request is
being answered. Reading is bounded in time (from accept or the first byte of a
request to its last byte) and in size (head and body); the TLS handshake is
also done between answers, so a client that never says hello costs nothing
but a file descriptor. Past the connection cap the oldest connection that is
only waiting is closed to make room, so real requests keep being answered
while idle ones are shed; only when every connection is busy being answered
does a newcomer get 503.

Why threads on the epoll rather than one reader handing requests to a pool:
the hand-over woke a second thread for every request, a quarter of the time a
/probe answer spent outside the probe. Every registration is one-shot, so one
event wakes one thread and no other thread sees that connection until it is
armed again; a thread that takes a request to answer starts another when none
would be left waiting, so a probe waiting on a silent peer never stops
/metrics. At most `Limits.workers` threads answer at once; past that, whole
requests wait in order for the next free thread while one thread goes on
accepting, reading, timing out and shedding. Idle, the pool shrinks back to
two threads.

Writing never holds a thread either: an answer that does not fit the
socket's buffer at once is parked, and the event loop sends the rest as the
client reads it. A connection has at most one answer queued (a pipelined
request is answered only once the answer before it is written), a parked
answer that makes no progress for `write_timeout` is dropped with its
connection, and one client (by address) may hold at most
`max_connections_per_client` connections and `max_queued_per_client` bytes of
parked answers: past either, its own longest-waiting connection makes room.
So clients that never read their answers cost memory within those bounds,
never a worker, and healthy requests keep their latency.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("dicom_exporter.http")

SWEEP_INTERVAL = 0.25
READ_CHUNK = 65536
ACCEPT_PAUSE = 0.1  # after EMFILE with nothing to shed: stop polling accept() briefly
_HEAD_END = re.compile(rb"\n\r?\n")


@dataclass(frozen=True)
class Limits:
    """The bounds of the HTTP server; defaults suit a Prometheus scraping every 15-60 s."""

    max_connections: int = 512
    workers: int = 72
    read_timeout: float = 10.0  # accept (or first byte of a request) to its last byte
    idle_timeout: float = 120.0  # keep-alive: wait for the next request
    write_timeout: float = 10.0  # a parked answer without progress for this long is dropped
    max_connections_per_client: int = 384  # three quarters: one client never takes all
    max_queued_per_client: int = 16 * 1024 * 1024  # bytes of parked answers, per client
    # The kernel's queue of answers per connection (SO_SNDBUF; the kernel doubles it):
    # its default grows to megabytes, each a place a client that never reads fills.
    send_buffer: int = 256 * 1024
    max_head: int = 32 * 1024
    max_body: int = 64 * 1024


@dataclass(frozen=True)
class Refusal:
    """A request the framing layer answers itself, then closes the connection."""

    status: int
    reason: str
    detail: str

    def response(self) -> bytes:
        body = f"{self.detail}\n".encode()
        return (f"HTTP/1.1 {self.status} {self.reason}\r\nContent-Type: text/plain; "
                f"charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


OVERLOADED = Refusal(503, "Service Unavailable", "too many connections, try again")


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_EXPECT_CONTINUE = re.compile(rb"\n[Ee][Xx][Pp][Ee][Cc][Tt][ \t]*:[ \t]*100-continue[ \t]*\r?\n",
                              re.IGNORECASE)


def expects_continue(buffer: bytes | bytearray) -> bool:
    """A whole request head that says `Expect: 100-continue` (its body still to come)."""
    found = _HEAD_END.search(buffer)
    return found is not None and _EXPECT_CONTINUE.search(buffer, 0, found.end()) is not None


def frame(buffer: bytes | bytearray, limits: Limits) -> int | Refusal | None:
    """The length of the first complete request in `buffer`, None if incomplete.

    Bodies are framed by Content-Length only: the request is not handed on until
    its body has arrived, so a body can never be read as a second request (the
    smuggling an unread POST body allowed). Anything ambiguous is refused.
    """
    found = _HEAD_END.search(buffer, 0, limits.max_head + 3)
    if found is None:
        if len(buffer) <= limits.max_head:
            return None
        if b"\n" not in buffer[: limits.max_head]:
            return Refusal(414, "URI Too Long", f"request line over {limits.max_head} bytes")
        return Refusal(431, "Request Header Fields Too Large",
                       f"request head over {limits.max_head} bytes")
    head_end = found.end()
    lengths: set[bytes] = set()
    for line in bytes(buffer[: found.start()]).split(b"\n")[1:]:
        line = line.rstrip(b"\r")
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
            return Refusal(400, "Bad Request", "malformed header line")
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            return Refusal(501, "Not Implemented", "chunked request bodies are not supported")
        if lowered == b"content-length":
            lengths.add(value.strip())
    if not lengths:
        return head_end
    if len(lengths) > 1:
        return Refusal(400, "Bad Request", "conflicting Content-Length headers")
    text = lengths.pop()
    if not text.isdigit() or not text.isascii():
        return Refusal(400, "Bad Request", "invalid Content-Length")
    if len(text) > 12 or int(text) > limits.max_body:
        return Refusal(413, "Content Too Large", f"request body over {limits.max_body} bytes")
    total = head_end + int(text)
    return total if len(buffer) >= total else None


class Connection:
    """One client connection and what has arrived of its next request."""

    __slots__ = ("after", "buffer", "client", "continued", "deadline", "keep", "ok", "outbox",
                 "peer", "proven", "since", "sock", "state")

    def __init__(self, sock: socket.socket, peer: tuple[Any, ...], deadline: float) -> None:
        self.sock = sock
        self.peer = peer
        self.client = str(peer[0]) if peer else ""  # what the per-client limits count by
        self.buffer = bytearray()
        self.deadline = deadline
        # "handshake", "read", "busy" (a thread answers it) or "write" (an answer parked)
        self.state = "read"
        self.outbox: memoryview | None = None  # the parked rest of an answer
        self.keep = True  # after the parked answer: keep the connection open
        self.ok = False  # the parked answer is a success (2xx, 3xx)
        self.continued = False  # 100 Continue sent for the request being read
        self.since = time.monotonic()
        self.proven = False  # has had a successful answer: shed last
        # Tidying up left for after the answer is written (a probe's socket close).
        self.after: list[Callable[[], None]] = []


# respond(request bytes, connection) -> (response bytes, keep the connection open)
Responder = Callable[[bytes, Connection], tuple[bytes, bool]]


READ = select.EPOLLIN | select.EPOLLONESHOT
WRITE = select.EPOLLOUT | select.EPOLLONESHOT
IDLE_THREADS = 2  # the pool shrinks back to this many when idle


def start_thread(target: Callable[[], None], name: str) -> None:
    """A daemon thread, so that a probe still waiting on a silent peer never delays exit."""
    threading.Thread(target=target, name=name, daemon=True).start()


class ConnectionLoop:
    """Accepts on every listener, reads requests whole and answers them, on a
    pool of threads that wait on one epoll (see the module's docstring)."""

    def __init__(self, listeners: list[socket.socket], respond: Responder,
                 tls: Callable[[], ssl.SSLContext | None], limits: Limits,
                 peer_allowed: Callable[[ssl.SSLSocket], bool] = lambda sock: True) -> None:
        self.peer_allowed = peer_allowed
        self.respond = respond
        self.tls = tls
        self.limits = limits
        self._epoll = select.epoll()
        self._listening = {listener.fileno(): listener for listener in listeners}
        # Connections waiting for a whole request, oldest first: those that never
        # got a successful answer, and kept-alive ones that did (Prometheus').
        self._fresh: collections.OrderedDict[int, Connection] = collections.OrderedDict()
        self._kept: collections.OrderedDict[int, Connection] = collections.OrderedDict()
        # Connections with a parked answer, the longest without progress first.
        self._writing: collections.OrderedDict[int, Connection] = collections.OrderedDict()
        self._connections: dict[int, Connection] = {}
        self._per_client: collections.Counter[str] = collections.Counter()
        self._queued: collections.Counter[str] = collections.Counter()  # parked bytes
        # Guards the maps, the counts and every step but answering: held by a
        # thread from the moment epoll wakes it until it has a request to answer.
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stop = threading.Event()
        # Whole requests read while no thread was free to answer: the oldest
        # first, to the next thread that finishes an answer.
        self._pending: collections.deque[tuple[Connection, bytes]] = collections.deque()
        self._paused_until = 0.0
        self._next_sweep = 0.0
        self.threads = 0  # in the pool, waiting or answering (at most workers + 1)
        self._waiting = 0  # of them, in (or on the way to) epoll.poll
        # Started but not yet waiting: counted as waiting, or a request read
        # meanwhile would start one more thread than the one left waiting.
        self._starting = 0
        self._answering = 0  # of them, answering a request (the lock not held)
        self._answered = threading.Condition(self._lock)  # _answering went down
        self.shed = 0  # connections closed to make room, for tests and logs
        self.closed = 0  # connections closed so far: the end of a burst, for `heap`

    # -- lifecycle -----------------------------------------------------------
    def run(self) -> None:
        """Serve on this thread and the pool until shutdown()."""
        with self._lock:
            if self._stop.is_set():  # closed before this thread first ran
                return
            for fd, listener in self._listening.items():
                listener.setblocking(False)
                self._epoll.register(fd, READ)
            # Level-triggered and never drained: once shutdown() writes, every
            # waiting thread wakes in turn and sees the stop.
            self._epoll.register(self._wake_r.fileno(), select.EPOLLIN)
            self._next_sweep = time.monotonic() + SWEEP_INTERVAL
            self.threads += 1
            self._spawn()  # one more, waiting while this one answers
        self._serve(shrinks=False)  # this thread returns at shutdown only

    def shutdown(self) -> None:
        """Take no more connections or requests; answers under way still go out."""
        self._stop.set()
        self._wake()
        with self._lock:
            pass  # a step begun before the stop ends now; every later one sees it

    def wait_answered(self, timeout: float) -> bool:
        """After shutdown(): wait until every answer under way is written (an
        aborted probe's too), at most `timeout`; False if some were not."""
        with self._lock:
            return self._answered.wait_for(lambda: not self._answering, timeout)

    def close(self) -> None:
        self.shutdown()
        with self._lock:
            for connection in list(self._connections.values()):
                self._close(connection)
            self._pending.clear()
        for listener in self._listening.values():
            listener.close()
        self._epoll.close()
        self._wake_r.close()
        self._wake_w.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._wake_w.send(b"x")

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def _spawn(self) -> bool:
        """Start a thread for the pool (holding the lock): at most `workers`
        answering and one waiting. False when none could be started."""
        if self.threads > self.limits.workers:
            return False
        try:
            start_thread(self._started, f"http-{self.threads + 1}")
        except RuntimeError as exc:  # "can't start new thread": a process limit
            logger.warning("cannot start an HTTP thread", extra={"fields": {
                "threads": self.threads, "error": str(exc)}})
            return False
        self.threads += 1
        self._starting += 1
        return True

    def _one_left_waiting(self) -> bool:
        """Whether a thread still waits on the epoll (or is starting to) once this
        one answers, starting one if none does (holding the lock)."""
        return bool(self._waiting or self._starting) or self._spawn()

    def _started(self) -> None:
        self._serve(starting=True)

    def _serve(self, shrinks: bool = True, starting: bool = False) -> None:
        """Wait for one event and handle it; answer a whole request here if
        another thread is left waiting (or can be started), else queue it for
        the next thread that finishes an answer and keep waiting: accepting,
        reading, timing out and shedding never stop."""
        lock = self._lock
        lock.acquire()
        if starting:  # from starting to waiting under one hold of the lock
            self._starting -= 1
        try:
            while not self._stop.is_set():
                job = None
                if self._pending and self._one_left_waiting():
                    job = self._pending.popleft()
                else:
                    self._waiting += 1
                    lock.release()
                    try:
                        events = self._epoll.poll(SWEEP_INTERVAL, 1)
                    except (OSError, ValueError):  # closed by close()
                        events = None
                    finally:
                        lock.acquire()
                        self._waiting -= 1
                    if events is None or self._stop.is_set():
                        return
                    if not events and shrinks and self._waiting and (
                            self.threads > IDLE_THREADS):
                        return  # idle while another waits: the pool shrinks back
                    if events:
                        job = self._event(events[0][0])
                    self._housekeeping()
                    if job is not None and not self._one_left_waiting():
                        self._pending.append(job)
                        job = None
                if job is not None:
                    self._answering += 1
                    lock.release()
                    try:
                        self._answer(*job)
                    finally:
                        lock.acquire()
                        self._answering -= 1
                        self._answered.notify_all()
        finally:
            self.threads -= 1
            lock.release()

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if self._paused_until and now >= self._paused_until:
            self._paused_until = 0.0
            for fd in self._listening:
                self._arm(fd, READ)
        if now >= self._next_sweep:
            self._sweep(now)
            self._next_sweep = now + SWEEP_INTERVAL

    def _event(self, fd: int) -> tuple[Connection, bytes] | None:
        """Handle one event; a whole request to answer. A bug costs the
        connection, never the thread."""
        try:
            return self._handle(fd)
        except Exception:
            logger.exception("HTTP connection handling failed")
            connection = self._connections.get(fd)
            if connection is not None:
                self._close(connection)
            return None

    def _handle(self, fd: int) -> tuple[Connection, bytes] | None:
        if self._stop.is_set():  # shutdown() came between the event and the lock
            return None
        listener = self._listening.get(fd)
        if listener is not None:
            self._accept(listener)
            if not self._paused_until:
                self._arm(fd, READ)
            return None
        connection = self._connections.get(fd)
        if connection is None:  # the wake-up, or a connection closed meanwhile
            return None
        if connection.state == "handshake":
            return self._handshake(connection)
        if connection.state == "read":
            return self._read(connection)
        if connection.state == "write":
            return self._flush(connection)
        return None

    def _arm(self, fd: int, events: int) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._epoll.modify(fd, events)

    # -- accepting -----------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        for _ in range(64):
            try:
                sock, peer = listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    if not self._shed_one():
                        # Nothing to close: stop polling the listeners for a moment
                        # rather than spin on a socket that stays readable.
                        self._paused_until = time.monotonic() + ACCEPT_PAUSE
                        for fd in self._listening:
                            self._arm(fd, select.EPOLLONESHOT)  # no events until re-armed
                        logger.warning("out of file descriptors, pausing accept",
                                       extra={"fields": {"connections": self.open_connections}})
                        return
                    continue
                logger.debug("accept failed", extra={"fields": {"error": str(exc)}})
                return
            self._admit(sock, peer)

    def _admit(self, sock: socket.socket, peer: tuple[Any, ...]) -> None:
        client = str(peer[0]) if peer else ""
        if self._per_client[client] >= self.limits.max_connections_per_client and (
                not self._shed_one(client)):
            sock.close()  # every one of this client's connections is being answered
            return
        if len(self._connections) >= self.limits.max_connections and not self._shed_one():
            if self.tls() is None:  # a TLS client could not read a plain 503
                with contextlib.suppress(OSError):
                    sock.setblocking(False)
                    sock.send(OVERLOADED.response())
            sock.close()
            return
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.limits.send_buffer)
        connection = Connection(sock, peer, time.monotonic() + self.limits.read_timeout)
        context = self.tls()
        if context is not None:
            try:
                connection.sock = context.wrap_socket(sock, server_side=True,
                                                      do_handshake_on_connect=False)
            except (ssl.SSLError, OSError):
                sock.close()
                return
            connection.state = "handshake"
        fd = connection.sock.fileno()
        self._connections[fd] = connection
        self._per_client[connection.client] += 1
        self._fresh[fd] = connection
        try:
            self._epoll.register(fd, READ)  # a TLS client's hello, too, comes as an event
        except (OSError, ValueError):
            self._close(connection)

    def _shed_one(self, client: str | None = None) -> bool:
        """Close the connection that has waited longest without a whole request,
        one that never had a successful answer first, then one whose parked
        answer is not being read: a flood of new clients, or of clients that do
        not read, then sheds itself, not the scraper's kept-alive connection.
        With `client`, only that client's connections."""
        for waiting in (self._fresh, self._writing, self._kept):
            for connection in waiting.values():
                if client is None or connection.client == client:
                    self._close(connection)
                    self.shed += 1
                    return True
        return False

    # -- reading -------------------------------------------------------------
    def _handshake(self, connection: Connection) -> tuple[Connection, bytes] | None:
        sock = connection.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._arm(sock.fileno(), READ)
            return None
        except ssl.SSLWantWriteError:
            self._arm(sock.fileno(), WRITE)
            return None
        except (ssl.SSLError, OSError) as exc:
            logger.debug("TLS handshake failed", extra={"fields": {
                "client": _peer_text(connection.peer), "error": str(exc)}})
            self._close(connection)
            return None
        if not self.peer_allowed(sock):
            logger.debug("client certificate names no allowed SAN", extra={"fields": {
                "client": _peer_text(connection.peer)}})
            self._close(connection)
            return None
        connection.state = "read"
        return self._read(connection)

    def _read(self, connection: Connection) -> tuple[Connection, bytes] | None:
        """Read what has arrived; the request, once it is whole, to be answered."""
        cap = self.limits.max_head + self.limits.max_body + 4
        while len(connection.buffer) <= cap:
            try:
                chunk = connection.sock.recv(READ_CHUNK)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except (ssl.SSLError, OSError):
                self._close(connection)
                return None
            if not chunk:
                self._close(connection)
                return None
            if not connection.buffer and connection.deadline - time.monotonic() > (
                    self.limits.read_timeout):
                # First byte of a request on a kept-alive connection: the read bound starts.
                connection.deadline = time.monotonic() + self.limits.read_timeout
            connection.buffer += chunk
            if len(chunk) < READ_CHUNK and not isinstance(connection.sock, ssl.SSLSocket):
                # Drained, most likely (if not, epoll reports the rest once re-armed):
                # a read that finds nothing costs an exception. TLS may hold bytes back.
                break
        framed = frame(connection.buffer, self.limits) if connection.buffer else None
        if framed is None:
            if not connection.continued and expects_continue(connection.buffer):
                # The head is whole and asks before sending its body (curl's POST):
                # without this the client waits a second before it sends anyway.
                connection.continued = True
                with contextlib.suppress(OSError):
                    connection.sock.send(CONTINUE)
            self._arm(connection.sock.fileno(), READ)
            return None
        if isinstance(framed, Refusal):
            with contextlib.suppress(OSError):
                connection.sock.send(framed.response())
            self._close(connection)
            return None
        request = bytes(connection.buffer[:framed])
        del connection.buffer[:framed]
        connection.continued = False
        self._forget(connection.sock.fileno())
        connection.state = "busy"
        return connection, request

    def _sweep(self, now: float) -> None:
        expired = [c for waiting in (self._fresh, self._kept, self._writing)
                   for c in waiting.values() if c.deadline <= now]
        for connection in expired:
            if connection.state == "write":
                logger.debug("answer not read in time, connection dropped", extra={"fields": {
                    "client": _peer_text(connection.peer)}})
            elif connection.buffer:
                # Part of a request and no more in time: say so before closing.
                with contextlib.suppress(OSError):
                    connection.sock.send(Refusal(408, "Request Timeout",
                                                 "request not received in time").response())
            self._close(connection)

    def _close(self, connection: Connection) -> None:
        try:
            fd = connection.sock.fileno()
        except OSError:
            fd = -1
        if fd >= 0:
            self._forget(fd)
            if self._connections.get(fd) is connection:
                del self._connections[fd]
                self.closed += 1
                self._per_client[connection.client] -= 1
                if not self._per_client[connection.client]:
                    del self._per_client[connection.client]
                with contextlib.suppress(ValueError, OSError):
                    self._epoll.unregister(fd)
        self._unpark(connection)
        connection.state = "closed"
        with contextlib.suppress(OSError):
            connection.sock.close()

    # -- answering (without the lock) ----------------------------------------
    def _answer(self, connection: Connection, request: bytes) -> None:
        """Answer, and the requests pipelined behind it; then arm the connection
        for the next request, or close it. A bug costs the connection, never
        the thread."""
        try:
            self._answer_all(connection, request)
        except Exception:
            logger.exception("HTTP answer failed")
            self._run(self._take_after(connection))
            with self._lock:
                self._close(connection)

    def _answer_all(self, connection: Connection, request: bytes) -> None:
        while True:
            try:
                response, keep = self.respond(request, connection)
            except Exception:  # the handler answers 500 itself; this is the last guard
                logger.exception("request handler failed")
                response, keep = Refusal(500, "Internal Server Error",
                                         "internal error").response(), False
            sock = connection.sock
            rest = None
            try:
                rest = self._send(sock, response)
            except (OSError, ValueError):
                keep = False
            # Run as this thread leaves the connection: before the next pipelined
            # request, and after arming it again, so a request sent as soon as
            # the answer arrived is not held behind a probe socket's close.
            after = self._take_after(connection)
            try:
                ok = response[9:10] in (b"2", b"3")
                if rest is not None:  # the client reads slowly, or not at all: park it
                    with self._lock:
                        if self._stop.is_set() or connection.state == "closed":
                            self._close(connection)
                        else:
                            self._park(connection, rest, keep, ok)
                    return
                if ok:
                    connection.proven = True
                framed = (frame(connection.buffer, self.limits)
                          if keep and connection.buffer else None)
                if isinstance(framed, int):  # pipelined and already whole: answer it now
                    request = bytes(connection.buffer[:framed])
                    del connection.buffer[:framed]
                    continue
                with self._lock:
                    if not keep or self._stop.is_set() or isinstance(framed, Refusal):
                        if isinstance(framed, Refusal):
                            with contextlib.suppress(OSError):
                                sock.send(framed.response())
                        self._close(connection)
                        return
                    self._rearm(connection)
                return
            finally:
                self._run(after)

    @staticmethod
    def _take_after(connection: Connection) -> list[Callable[[], None]]:
        """What the answer left for after it was written (a probe's socket close),
        taken off the connection: no other thread shares it once the connection
        is armed again."""
        actions, connection.after = connection.after, []
        return actions

    @staticmethod
    def _run(actions: list[Callable[[], None]]) -> None:
        for action in actions:
            with contextlib.suppress(OSError):
                action()

    @staticmethod
    def _send(sock: socket.socket, response: bytes) -> memoryview | None:
        """Send what the socket takes now, never waiting: the rest, or None.

        Most answers fit the socket buffer and go in one non-blocking send.
        """
        try:
            sent = sock.send(response)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            sent = 0
        return memoryview(response)[sent:] if sent < len(response) else None

    # -- parked answers (holding the lock) -----------------------------------
    def _park(self, connection: Connection, rest: memoryview, keep: bool, ok: bool) -> None:
        """Leave the rest of an answer to the event loop; no thread waits on it."""
        fd = connection.sock.fileno()
        if fd < 0 or self._connections.get(fd) is not connection:
            return
        connection.outbox, connection.keep, connection.ok = rest, keep, ok
        connection.state = "write"
        connection.deadline = time.monotonic() + self.limits.write_timeout
        self._writing[fd] = connection
        self._queued[connection.client] += len(rest)
        # One client's parked answers within bounds: its longest-stalled ones go first.
        while self._queued[connection.client] > self.limits.max_queued_per_client:
            stalled = next(c for c in self._writing.values() if c.client == connection.client)
            self._close(stalled)
            self.shed += 1
            if stalled is connection:
                return
        self._arm(fd, WRITE)

    def _unpark(self, connection: Connection) -> None:
        if connection.outbox is None:
            return
        self._queued[connection.client] -= len(connection.outbox)
        if self._queued[connection.client] <= 0:
            del self._queued[connection.client]
        connection.outbox = None
        with contextlib.suppress(OSError):
            self._writing.pop(connection.sock.fileno(), None)

    def _flush(self, connection: Connection) -> tuple[Connection, bytes] | None:
        """The socket can take more of a parked answer: send it; once all is
        sent, the connection goes on as after any answer."""
        sock, rest = connection.sock, connection.outbox
        assert rest is not None
        fd = sock.fileno()
        try:
            sent = sock.send(rest)
        except (BlockingIOError, ssl.SSLWantWriteError):
            sent = 0
        except ssl.SSLWantReadError:  # TLS wants the client's bytes first
            self._arm(fd, select.EPOLLIN | select.EPOLLOUT | select.EPOLLONESHOT)
            return None
        except (ssl.SSLError, OSError, ValueError):
            self._close(connection)
            return None
        if sent:  # progress: the write timeout starts again, the client goes to the back
            self._queued[connection.client] -= sent
            connection.outbox = rest = rest[sent:]
            connection.deadline = time.monotonic() + self.limits.write_timeout
            self._writing.move_to_end(fd)
        if rest:
            self._arm(fd, WRITE)
            return None
        self._unpark(connection)
        if connection.ok:
            connection.proven = True
        if not connection.keep or self._stop.is_set():
            self._close(connection)
            return None
        framed = frame(connection.buffer, self.limits) if connection.buffer else None
        if isinstance(framed, Refusal):
            with contextlib.suppress(OSError):
                sock.send(framed.response())
            self._close(connection)
            return None
        if isinstance(framed, int):  # pipelined behind the parked answer: answer it now
            request = bytes(connection.buffer[:framed])
            del connection.buffer[:framed]
            connection.state = "busy"
            return connection, request
        self._rearm(connection)
        return None

    def _rearm(self, connection: Connection) -> None:
        try:
            fd = connection.sock.fileno()
        except OSError:
            return
        if fd < 0 or self._connections.get(fd) is not connection:
            return  # closed by shutdown meanwhile
        connection.state = "read"
        connection.since = time.monotonic()
        connection.deadline = connection.since + (
            self.limits.read_timeout if connection.buffer else self.limits.idle_timeout)
        (self._kept if connection.proven else self._fresh)[fd] = connection
        self._arm(fd, READ)

    def _forget(self, fd: int) -> None:
        self._fresh.pop(fd, None)
        self._kept.pop(fd, None)
        self._writing.pop(fd, None)


def _peer_text(peer: tuple[Any, ...]) -> str:
    return f"{peer[0]}:{peer[1]}" if len(peer) >= 2 else str(peer)
