"""An emulator served from a process of its own, as a real provider would be: its threads do
not compete for the test's interpreter lock, so a load test measures the gate, not the
emulator.

    python -m tests.emulator_process geetest 1000 [threads|asyncio]

prints one JSON line, ``{"url": ..., "fields": [...]}`` (the endpoint, and that many solved
captchas), then serves until its stdin closes, answering each line ``stats`` read there with
``{"connections": n, "calls": n}`` (TCP connections accepted, requests answered).

``threads`` (the default) is the emulator's own server, ``EmulatorServer``, with every outage
mode. ``asyncio`` serves the same emulator logic (signature checks, answers) from one event
loop with a minimal keep-alive HTTP/1.1 reader: no outage modes, but about a third of the
threaded server's CPU per request, so a throughput benchmark measures the handlers in front of
it rather than the emulator's ``http.server`` (a real provider's front end is not one).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class EmulatorProcess:
    url: str
    fields: list[dict[str, str]]
    process: subprocess.Popen[str] = field(repr=False)

    def stats(self) -> dict[str, int]:
        """TCP connections the emulator accepted, and requests it answered, so far."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        return dict(json.loads(self.process.stdout.readline()))


@contextmanager
def emulator_process(case: str, solved: int, server: str = "threads") -> Iterator[EmulatorProcess]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator_process", case, str(solved), server],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        ready = json.loads(process.stdout.readline())
        yield EmulatorProcess(ready["url"], ready["fields"], process)
        process.stdin.close()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


class _Connection(asyncio.Protocol):
    """One kept-alive connection: heads end at a blank line, bodies have a content-length."""

    def __init__(self, owner: AsyncioServer) -> None:
        self.owner = owner
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.owner.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
            length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.answer(lines[0], headers, body)

    def answer(self, line: str, headers: list[tuple[str, ...]], body: bytes) -> None:
        import httpx

        method, target, _ = line.split(" ", 2)
        request = httpx.Request(method, self.owner.url + target, headers=headers, content=body)
        emulator = self.owner.emulator
        emulator._record(request)
        response = emulator.respond(request)
        content = response.read()
        head = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
        for name, value in response.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                head.append(f"{name}: {value}")
        head.append(f"content-length: {len(content)}")
        assert self.transport is not None
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + content)


class AsyncioServer:
    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.connections = 0
        self.url = ""

    def endpoint(self, path: str) -> str:
        return self.url + path

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Connection(self), "127.0.0.1", 0, backlog=1024)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def _serve_asyncio(emulator: Any, fields: list[dict[str, str]], path: str) -> None:
    async def run() -> None:
        server = AsyncioServer(emulator)
        await server.start()
        print(json.dumps({"url": server.endpoint(path), "fields": fields}), flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():  # until the parent closes stdin
            if line.strip() == b"stats":
                stats = {"connections": server.connections, "calls": emulator.calls}
                print(json.dumps(stats), flush=True)

    asyncio.run(run())


def main(case_name: str, solved: int, server_kind: str = "threads") -> None:
    from tests.hardening_kit import CASES

    case = next(c for c in CASES if c.name == case_name)
    emulator: Any = case.emulator()
    fields = [case.issue(emulator) for _ in range(solved)]
    if server_kind == "asyncio":
        _serve_asyncio(emulator, fields, case.path)
        return
    with emulator.serve() as server:
        print(json.dumps({"url": server.endpoint(case.path), "fields": fields}), flush=True)
        for line in sys.stdin:  # until the parent closes it
            if line.strip() == "stats":
                stats = {"connections": server.connections, "calls": emulator.calls}
                print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:4])
