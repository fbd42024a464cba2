"""Many real servers at once, for the routing differential: uvicorn (h11 and httptools),
hypercorn (HTTP/1.1, and HTTP/2 over cleartext with prior knowledge), wsgiref, the Werkzeug
dev server and waitress in threads of one subprocess, gunicorn and daphne in processes of
their own, each on a listening socket the test made (OS-picked port, 127.0.0.1); granian in a
process of its own on a Unix socket in a temporary directory (it binds in each worker and
takes no descriptor).

    with zoo([Target("uvicorn-h11", "starlette", gated=True), ...]) as ports: ...

The parent binds and listens, then hands the sockets down (``pass_fds``), so a connection made
before a server's accept loop runs waits in the backlog instead of being refused. The subprocess
prints ``ready`` once every server is up; closing its stdin ends it.

``request(port, method, target)`` sends one request as raw bytes over a fresh socket, so no
client library normalises the method or the request target (``h2=True``: as one HTTP/2
stream whose ``:path`` is those bytes).
"""

from __future__ import annotations

import json
import logging
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from tests import ROOT

UVICORN = ("uvicorn-h11", "uvicorn-httptools")
ASGI_SERVERS = (*UVICORN, "hypercorn-h1", "hypercorn-h2c", "granian", "daphne")
WSGI_SERVERS = ("wsgiref", "werkzeug", "waitress", "gunicorn")
#: Servers run as processes of their own (the others share one subprocess's threads).
OWN_PROCESS = ("gunicorn", "daphne", "granian")
#: Frameworks that must see the lifespan protocol before their first request.
#: BlackSheep starts itself on its first request otherwise, and concurrent first requests
#: race in its start (a 500 now and then).
NEEDS_LIFESPAN = ("sanic", "blacksheep")
STARTUP = 120.0  # seconds: a bound for a loaded machine, not a guess at how long it takes


@dataclass(frozen=True)
class Target:
    server: str
    framework: str
    gated: bool
    prefix: str = ""  # uvicorn's root_path / waitress's url_prefix

    @property
    def name(self) -> str:
        extra = f"@{self.prefix}" if self.prefix else ""
        return f"{self.server}/{self.framework}{extra}/{'gated' if self.gated else 'bare'}"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    @property
    def document(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    @property
    def view(self) -> str | None:
        """The protected view that ran, if one did."""
        document = self.document
        return document.get("view") if document is not None and self.status == 200 else None

    @property
    def verdict(self) -> str | None:
        document = self.document
        return document.get("verdict") if document is not None else None

    @property
    def error(self) -> str | None:
        document = self.document
        return document.get("error") if document is not None else None


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    root = str(ROOT)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _wait_ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + STARTUP
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError("routing zoo did not start")
        readable, _, _ = select.select([process.stdout], [], [], left)
        if readable:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"routing zoo exited with {process.wait()}")
            if line.strip() == "ready":
                return


Address = int | str  # a port on 127.0.0.1, or a Unix socket's path


@contextmanager
def zoo(
    targets: list[Target], env: dict[str, str] | None = None
) -> Iterator[dict[Target, Address]]:
    """Serve every target; yield its address."""
    sockets = {target: _listener() for target in targets if target.server != "granian"}
    ports: dict[Target, Address] = {t: sock.getsockname()[1] for t, sock in sockets.items()}
    processes: list[subprocess.Popen[str]] = []
    uds_dir = tempfile.TemporaryDirectory(prefix="routing-zoo-")
    try:
        threaded = [t for t in targets if t.server not in OWN_PROCESS]
        if threaded:
            spec = [{**asdict(t), "fd": sockets[t].fileno()} for t in threaded]
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "tests.routing.routing_zoo", json.dumps(spec)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    pass_fds=[sockets[t].fileno() for t in threaded],
                    env=_env(env or {}),
                )
            )
        for target in (t for t in targets if t.server == "gunicorn"):
            fd = sockets[target].fileno()
            command = [
                *(sys.executable, "-m", "gunicorn", "--bind", f"fd://{fd}"),
                *("--workers", "1", "--worker-class", "sync", "--log-level", "error"),
                "--no-control-socket",
                "tests.routing.routing_apps:from_env()",
            ]
            processes.append(
                subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    pass_fds=[fd],
                    env=_env(
                        {
                            **(env or {}),
                            "ROUTING_APP": target.framework,
                            "ROUTING_GATED": "1" if target.gated else "0",
                        }
                    ),
                )
            )
        if threaded:
            _wait_ready(processes[0])
        for target in (t for t in targets if t.server == "daphne"):
            fd = sockets[target].fileno()
            command = [
                *(sys.executable, "-m", "daphne", "--fd", str(fd), "-v", "0"),
                "tests.routing.routing_served:application",
            ]
            processes.append(_own_process(command, fd, target, env))
        for index, target in enumerate(t for t in targets if t.server == "granian"):
            path = os.path.join(uds_dir.name, f"granian-{index}.sock")
            command = [
                *(sys.executable, "-m", "granian", "--interface", "asgi", "--uds", path),
                *("--workers", "1", "--no-log", "--no-ws"),
                "tests.routing.routing_served:application",
            ]
            processes.append(_own_process(command, None, target, env))
            ports[target] = path
        _wait_for_uds([p for p in ports.values() if isinstance(p, str)])
        # gunicorn's and daphne's sockets listen already, but a process still importing its
        # framework on a loaded machine can leave a request in the backlog past its timeout:
        # each must have answered once.
        _wait_answering([ports[t] for t in targets if t.server in OWN_PROCESS])
        yield ports
    finally:
        uds_dir.cleanup()
        for sock in sockets.values():
            sock.close()
        for process in processes:
            if process.stdin is not None:
                process.stdin.close()  # the zoo ends on EOF
            else:
                process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(20)
            if process.stdout is not None:
                process.stdout.close()


def _own_process(
    command: list[str], fd: int | None, target: Target, env: dict[str, str] | None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        # Django's "Not Found" warnings; a server that fails shows as requests unanswered.
        stderr=subprocess.DEVNULL,
        pass_fds=[] if fd is None else [fd],
        env=_env(
            {
                **(env or {}),
                "ROUTING_APP": target.framework,
                "ROUTING_GATED": "1" if target.gated else "0",
            }
        ),
    )


def _wait_for_uds(paths: list[str]) -> None:
    """Until every Unix socket accepts a connection (granian made them; nothing else says
    when it is up), within STARTUP."""
    deadline = time.monotonic() + STARTUP
    for path in paths:
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"granian did not listen at {path}") from None
                time.sleep(0.05)  # polling the socket file; the deadline is the bound


def _wait_answering(addresses: list[Address]) -> None:
    """Until a GET of each address gets an HTTP answer (any status), within STARTUP. The
    request waits in the backlog until the server accepts it: no polling but on a close."""
    deadline = time.monotonic() + STARTUP
    for address in addresses:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"no answer from {address} within {STARTUP} s")
            try:
                if request(address, "GET", "/", timeout=left).status:
                    break
            except OSError:  # a timeout, or a reset while the server started
                continue
            time.sleep(0.05)  # closed without an answer; the deadline is the bound


def _connect(address: Address, timeout: float) -> socket.socket:
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(timeout)
        sock.connect(address)
        return sock
    return socket.create_connection(("127.0.0.1", address), timeout=timeout)


def request(
    port: Address, method: str, target: str, timeout: float = 30.0, *, h2: bool = False
) -> Answer:
    """One request, as raw bytes, over a fresh connection; the answer (status 0: none)."""
    if h2:
        try:
            return _request_h2(port, method, target, timeout / 3)
        except TimeoutError:
            # Under a loaded machine (300 servers, two test workers) hypercorn now and then
            # leaves an HTTP/2 connection unanswered, bare or gated alike: asked once more
            # on a fresh connection, and a second silence fails the test.
            return _request_h2(port, method, target, timeout)
    host = f"127.0.0.1:{port}" if isinstance(port, int) else "localhost"
    head = (
        f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n"
        "Accept: application/json\r\nConnection: close\r\n\r\n"
    )
    chunks: list[bytes] = []
    with _connect(port, timeout) as sock:
        sock.sendall(head.encode("latin-1"))
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    status_line, _, rest = raw.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return Answer(0, raw)
    headers, _, body = rest.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in headers.lower():
        body = _dechunk(body)
    return Answer(int(parts[1]), body)


def _request_h2(port: Address, method: str, target: str, timeout: float) -> Answer:
    """One HTTP/2 stream with prior knowledge (h2c): ``:method`` and ``:path`` as given, the
    h2 library's own checks of them off, so the server sees the bytes the test chose."""
    import h2.config
    import h2.connection
    import h2.events

    config = h2.config.H2Configuration(
        client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False
    )
    conn = h2.connection.H2Connection(config=config)
    conn.initiate_connection()
    headers = [
        (b":method", method.encode("latin-1")),
        (b":scheme", b"http"),
        (b":authority", f"127.0.0.1:{port}".encode()),
        (b":path", target.encode("latin-1")),
        (b"accept", b"application/json"),
    ]
    conn.send_headers(1, headers, end_stream=True)
    status, body = 0, b""
    with _connect(port, timeout) as sock:
        sock.sendall(conn.data_to_send())
        done = False
        while not done:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            try:
                events = conn.receive_data(data)
            except Exception:  # the server broke the protocol: no answer to report
                break
            for event in events:
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, 1)
                elif isinstance(
                    event,
                    (h2.events.StreamEnded, h2.events.StreamReset, h2.events.ConnectionTerminated),
                ):
                    done = True
            try:
                sock.sendall(conn.data_to_send())
            except OSError:  # the server closed the connection: what it said is all there is
                break
    return Answer(status, body)


def _dechunk(data: bytes) -> bytes:
    out = []
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out.append(data[:size])
        data = data[size + 2 :]
    return b"".join(out)


# ---------------------------------------------------------------- the subprocess


def _serve_uvicorn(
    app: Any, sock: socket.socket, http: str, prefix: str, lifespan: str
) -> threading.Event:
    import asyncio

    import uvicorn

    # log_config=None: each Config would otherwise re-run uvicorn's dictConfig, resetting
    # its loggers to INFO for a moment while servers made before it are starting up.
    config = uvicorn.Config(
        app,
        http=http,
        lifespan=lifespan,
        log_level="critical",
        log_config=None,
        root_path=prefix,
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    started = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + STARTUP
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)  # polling a flag uvicorn sets; the deadline is the bound
        started.set()

    threading.Thread(target=watch, daemon=True).start()
    return started


def _serve_hypercorn(app: Any, sock: socket.socket, prefix: str) -> threading.Event:
    """hypercorn on ``sock``: HTTP/1.1, and HTTP/2 for a client that opens with its preface."""
    import asyncio

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn's socket owns the descriptor now
    config.accesslog = None
    config.errorlog = None
    config.root_path = prefix
    started = threading.Event()

    async def run() -> None:
        forever = asyncio.Event()
        loop = asyncio.get_running_loop()
        # The socket listens already: a request sent before serve() accepts waits in the
        # backlog, so "started" need only mean the loop runs.
        loop.call_soon(started.set)
        await serve(app, config, shutdown_trigger=forever.wait)

    threading.Thread(target=lambda: asyncio.run(run()), daemon=True).start()
    return started


def _serve_wsgiref(app: Any, sock: socket.socket) -> None:
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

        def server_bind(self) -> None:  # the socket is bound and listening already
            self.socket.close()
            self.socket = sock
            self.server_address = sock.getsockname()
            self.server_name, self.server_port = "127.0.0.1", self.server_address[1]
            self.setup_environ()

        def server_activate(self) -> None:
            return

    server = Server(("127.0.0.1", 0), Quiet)
    server.set_app(app)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()


def _serve_werkzeug(app: Any, sock: socket.socket) -> None:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", sock.getsockname()[1], app, threaded=True, fd=sock.fileno())
    threading.Thread(target=server.serve_forever, daemon=True).start()


def _serve_waitress(app: Any, sock: socket.socket, prefix: str) -> None:
    import waitress

    options: dict[str, Any] = {"url_prefix": prefix} if prefix else {}
    server = waitress.create_server(app, map={}, sockets=[sock], threads=4, **options)
    threading.Thread(target=server.run, daemon=True).start()


def main(spec: list[dict[str, Any]]) -> None:
    from tests.routing.routing_apps import build

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("waitress").setLevel(logging.ERROR)
    logging.getLogger("django").setLevel(logging.CRITICAL)
    pending = []
    for item in spec:
        sock = socket.socket(fileno=item["fd"])
        app = build(item["framework"], item["gated"])
        server, prefix = item["server"], item["prefix"]
        if server in UVICORN:
            lifespan = "on" if item["framework"] in NEEDS_LIFESPAN else "off"
            pending.append(_serve_uvicorn(app, sock, server.split("-")[1], prefix, lifespan))
        elif server.startswith("hypercorn-"):
            pending.append(_serve_hypercorn(app, sock, prefix))
        elif server == "wsgiref":
            _serve_wsgiref(app, sock)
        elif server == "werkzeug":
            _serve_werkzeug(app, sock)
        elif server == "waitress":
            _serve_waitress(app, sock, prefix)
        else:
            raise ValueError(f"unknown server {server!r}")
    for started in pending:
        started.wait()
    print("ready", flush=True)
    sys.stdin.read()  # until the parent closes it
    os._exit(0)  # daemon threads hold the servers: no orderly shutdown is needed


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
