"""The common part of every provider emulator: outage modes, an in-process httpx transport,
and a real HTTP server on 127.0.0.1.

An emulator's ``answer(request)`` is pure logic, like the vendor's server would be: it takes
an ``httpx.Request`` and returns an ``httpx.Response``. Everything else here is plumbing that
puts the outages of a real network in front of it.
"""

from __future__ import annotations

import contextlib
import enum
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import httpx


class Outage(str, enum.Enum):
    """Ways a provider fails that are the provider's fault, not the user's."""

    HTTP_500 = "500"
    HTTP_429 = "429"
    GARBAGE = "garbage"  # 200 with a body that is not JSON at all
    HTML = "html"  # 200 with an HTML page, as Google serves when it rate-limits
    HANG = "hang"  # never answers (until the server closes)
    SLOW = "slow"  # answers correctly after ``Emulator.delay`` seconds
    RESET = "reset"  # the connection is reset before a full answer
    REFUSE = "refuse"  # nothing listens: connection refused


_HANG_LIMIT = 120.0  # a hanging handler gives up after this, so no test leaves a thread behind
_POLL_INTERVAL = 0.01


class Emulator:
    """Base of the provider emulators. Subclasses implement ``answer``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outage: Outage | None = None
        self.delay = 0.0
        #: Every request that reached the emulator's logic (outages included), in order.
        self.requests: list[httpx.Request] = []
        self._released = threading.Event()
        self._servers: list[EmulatorServer] = []

    @property
    def outage(self) -> Outage | None:
        return self._outage

    @outage.setter
    def outage(self, value: Outage | str | None) -> None:
        self._outage = Outage(value) if value is not None else None
        for server in list(self._servers):
            server.listening = self._outage is not Outage.REFUSE

    @property
    def calls(self) -> int:
        return len(self.requests)

    def answer(self, request: httpx.Request) -> httpx.Response:
        raise NotImplementedError

    # In-process use.

    def transport(self) -> httpx.MockTransport:
        """An httpx transport for sync and async clients: no socket at all.

        Outages are simulated by the exceptions httpx would raise: HANG and SLOW (when
        ``delay`` is set) raise ``httpx.ReadTimeout``, RESET ``httpx.ReadError``, REFUSE
        ``httpx.ConnectError``.
        """
        return httpx.MockTransport(self._handle_in_process)

    def _handle_in_process(self, request: httpx.Request) -> httpx.Response:
        request.read()
        outage = self._outage
        if outage is Outage.REFUSE:
            raise httpx.ConnectError("connection refused (emulated)", request=request)
        self._record(request)
        if outage is Outage.HANG or (outage is Outage.SLOW and self.delay > 0):
            raise httpx.ReadTimeout("no answer (emulated)", request=request)
        if outage is Outage.RESET:
            raise httpx.ReadError("connection reset (emulated)", request=request)
        return self.respond(request)

    # Shared by both uses.

    def respond(self, request: httpx.Request) -> httpx.Response:
        """The answer, after the outages that produce an answer at all."""
        outage = self._outage
        if outage is Outage.HTTP_500:
            return httpx.Response(500, text="internal server error")
        if outage is Outage.HTTP_429:
            return httpx.Response(429, text="too many requests")
        if outage is Outage.GARBAGE:
            headers = {"content-type": "application/json"}
            return httpx.Response(200, content=b"\x00{not json", headers=headers)
        if outage is Outage.HTML:
            return httpx.Response(200, html="<html><body>We're sorry...</body></html>")
        with self._lock:
            return self.answer(request)

    def _record(self, request: httpx.Request) -> None:
        with self._lock:
            self.requests.append(request)

    # A real server.

    @contextmanager
    def serve(self) -> Iterator[EmulatorServer]:
        """Serve this emulator over HTTP on 127.0.0.1 (a port the OS picks) while in the block."""
        server = EmulatorServer(self)
        try:
            yield server
        finally:
            server.close()


class EmulatorServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 in front of an emulator.

    ``port`` is the port to listen on (0, the default: one the OS picks). ``url`` is its base
    URL; ``endpoint(path)`` a full URL; ``connections`` counts the TCP
    connections accepted (to see a client pool at work).
    """

    def __init__(self, emulator: Emulator, *, port: int = 0) -> None:
        self.emulator = emulator
        self.connections = 0
        self._closed = threading.Event()
        self._open_sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        self._httpd = _HTTPServer(self, port)  # port 0: one the OS picks
        self.port: int = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = self._start(self._httpd)
        self._listening = True
        emulator._servers.append(self)
        if emulator.outage is Outage.REFUSE:
            self.listening = False

    @staticmethod
    def _start(httpd: _HTTPServer) -> threading.Thread:
        # serve_forever's default poll of 0.5 s is how long every shutdown() waits: a test
        # suite that starts hundreds of servers would spend minutes just stopping them.
        thread = threading.Thread(target=httpd.serve_forever, args=(_POLL_INTERVAL,), daemon=True)
        thread.start()
        return thread

    def endpoint(self, path: str = "/") -> str:
        return self.url + path

    @property
    def listening(self) -> bool:
        return self._listening

    @listening.setter
    def listening(self, value: bool) -> None:
        """Stop listening (connections are refused) or listen again on the same port."""
        if value == self._listening or self._closed.is_set():
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
        if not value:
            # A server that stopped listening has no connections either: a client's pooled
            # keep-alive connection must see the end too, not a server still answering on it.
            self._drop_connections()
        if value:
            self._httpd = _HTTPServer(self, self.port)
            self._thread = self._start(self._httpd)
        self._listening = value

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()  # releases hanging handlers
        if self in self.emulator._servers:
            self.emulator._servers.remove(self)
        if self._listening:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
        self._drop_connections()

    def _drop_connections(self) -> None:
        with self._sockets_lock:
            sockets = list(self._open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver listens with a backlog of 5: a client pool opening dozens of connections
    # at once overflows it, and the kernel drops or resets the rest. A real provider's
    # front end queues them.
    request_queue_size = 1024

    def __init__(self, owner: EmulatorServer, port: int) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", port), _handler_for(owner))

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self.owner._sockets_lock:
            self.owner.connections += 1
            self.owner._open_sockets.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        # A client that gave up (timed out, cancelled) before the answer is what the outage
        # tests do on purpose: not worth a traceback on stderr.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self.owner._sockets_lock:
            self.owner._open_sockets.discard(request)
        super().shutdown_request(request)


def _handler_for(owner: EmulatorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes: with Nagle's algorithm the body waits for the
        # client's delayed ACK, 40 ms a request on a kept-alive connection.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            return

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            url = f"http://{self.headers.get('host', '127.0.0.1')}{self.path}"
            headers = list(self.headers.items())
            request = httpx.Request(self.command, url, headers=headers, content=body)
            emulator = owner.emulator
            outage = emulator.outage
            if outage is Outage.REFUSE:
                # Not listening refuses new connections; one a client kept alive from before
                # is dropped unanswered, as a provider that went down would drop it.
                self.close_connection = True
                return
            emulator._record(request)
            if outage is Outage.HANG:
                owner._closed.wait(_HANG_LIMIT)
                self.close_connection = True
                return
            if outage is Outage.SLOW and emulator.delay > 0 and owner._closed.wait(emulator.delay):
                return
            if outage is Outage.RESET:
                # Half an answer, then an RST (SO_LINGER 0), as a crashed proxy would leave it.
                self.wfile.write(b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"sta')
                self.wfile.flush()
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                return
            response = emulator.respond(request)
            content = response.read()
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = _serve

    return Handler
