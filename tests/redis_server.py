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


def _free_port_pair() -> int:
    """A TCP port p on 127.0.0.1 with p + 10000 (the cluster bus) free too."""
    for _ in range(100):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port + 10000 > 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair")


@contextmanager
def redis_cluster(nodes: int = 3) -> Iterator[list[int]]:
    """A real Redis Cluster of ``nodes`` masters on 127.0.0.1; yields their ports."""
    assert REDIS_SERVER is not None
    directory = tempfile.mkdtemp(prefix="cg-cluster-")
    procs: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    try:
        for n in range(nodes):
            port = _free_port_pair()
            node_dir = os.path.join(directory, str(n))
            os.mkdir(node_dir)
            procs.append(
                subprocess.Popen(
                    [
                        REDIS_SERVER,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        os.path.join(node_dir, "nodes.conf"),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        node_dir,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            ports.append(port)
        deadline = time.monotonic() + 10
        for port in ports:
            while (
                subprocess.run(
                    ["redis-cli", "-p", str(port), "ping"], capture_output=True
                ).stdout.strip()
                != b"PONG"
            ):
                assert time.monotonic() < deadline, "cluster node did not start"
                time.sleep(0.01)
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                *("--cluster-replicas", "0", "--cluster-yes"),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        for port in ports:
            while (
                b"cluster_state:ok"
                not in subprocess.run(
                    ["redis-cli", "-p", str(port), "cluster", "info"], capture_output=True
                ).stdout
            ):
                assert time.monotonic() < deadline + 20, "cluster did not converge"
                time.sleep(0.02)
        yield ports
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(directory, ignore_errors=True)
