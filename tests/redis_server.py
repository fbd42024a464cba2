"""A real redis-server for tests, on a unix socket in a temporary directory.

No TCP port, no persistence (``--save ''``, no AOF), its own process the test can kill,
restart on the same socket, or pause (SIGSTOP) to make it slow without closing anything.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

REDIS_SERVER = shutil.which("redis-server") or shutil.which("valkey-server")


class RedisServer:
    def __init__(self, directory: str) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed (.ci/run installs it)")
        self.directory = directory
        self.socket = os.path.join(directory, "redis.sock")
        self.url = f"unix://{self.socket}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", "0",
                "--unixsocket", self.socket,
                "--unixsocketperm", "700",
                "--save", "",
                "--appendonly", "no",
                "--dir", self.directory,
                "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.005)

    def _answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(0.5)
                sock.connect(self.socket)
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-run, as a crash would; its data is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None
        if os.path.exists(self.socket):
            os.unlink(self.socket)

    def restart(self) -> None:
        self.kill()
        self.start()

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
        self.kill()


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    directory = tempfile.mkdtemp(prefix="cg-redis-")
    server = RedisServer(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
