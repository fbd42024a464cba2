"""Real servers for the adapter tests, on OS-chosen ports of 127.0.0.1: the Werkzeug server in
a thread, and gunicorn in a process of its own on a socket the test made and listens on (so a
connection made before its worker runs waits in the backlog instead of being refused).

``raw(url, head, body)`` sends one request as bytes, so a repeated header reaches the server as
written, which no client library allows."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextmanager
def serve_werkzeug(app: Any) -> Iterator[str]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()  # the socket listens already: make_server bound it
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextmanager
def serve_gunicorn(spec: str, env: dict[str, str], *args: str) -> Iterator[str]:
    """``gunicorn spec`` (one worker; ``args`` add a worker class) with ``env`` set."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    fd = sock.fileno()
    command = [
        *(sys.executable, "-m", "gunicorn", "--bind", f"fd://{fd}", "--workers", "1"),
        *("--log-level", "error", "--no-control-socket", *args, spec),
    ]
    full_env = {**os.environ, **env}
    full_env["PYTHONPATH"] = ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, pass_fds=[fd], env=full_env)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(20)


def raw(url: str, head: str, body: bytes = b"", timeout: float = 30.0) -> tuple[int, bytes]:
    """Send ``head`` (request line and headers, CRLF-separated, without the blank line) and
    ``body`` over a fresh connection; the status and body of the answer."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    message = head.rstrip("\r\n") + f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    chunks: list[bytes] = []
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as conn:
        conn.sendall(message.encode("latin-1") + body)
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    status_line, _, rest = answer.partition(b"\r\n")
    headers, _, payload = rest.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in headers.lower():
        payload = _dechunk(payload)
    return int(status_line.split(b" ")[1]), payload


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out
