"""Sending a ProviderCall from the WSGI door: a pooled urllib3 client by default, an httpx
(or httpx2) ``Client`` when given one. Thread-safe: one sender serves every worker thread.

urllib3 was chosen by measurement (bench/README.md): about half the CPU of httpx's ``Client``
per call. A wait for a free connection is bounded by the provider's timeout and is ``BUSY``
(ours), never the provider's failure. The provider's timeout bounds the whole call, from
sending the request to the last byte of the answer: urllib3's ``total`` bounds connecting and
each read, but a provider that trickles its answer a byte at a time never lets one read time
out, and held a worker 15 s with ``timeout=2``. So the connections of our pools read through
``_DeadlineSocket``, which gives each read only what is left of the call's time.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
from typing import Any

from ._effects import BUSY, CallProblem, ProviderCall
from ._proxy import env_proxy
from .providers._wire import ProviderResponse

#: Connections kept per provider host; beyond that, threads wait (bounded) for one.
POOL_SIZE = 100

TIMEOUT: CallProblem = CallProblem("timeout")

#: The timeout of the call this thread is sending (None: none is being sent by us).
_CALL = threading.local()


class _DeadlineSocket:
    """A connection's socket as its answer is read: every read waits at most what is left
    until ``deadline``, then times out as a slow read does (urllib3: ReadTimeoutError)."""

    __slots__ = ("_deadline", "_sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def makefile(self, mode: str = "rb", buffering: int = -1, **_: Any) -> io.BufferedReader:
        # As socket.makefile does, but reading through this object.
        self._sock._io_refs += 1  # type: ignore[attr-defined]
        return io.BufferedReader(socket.SocketIO(self, "rb"), io.DEFAULT_BUFFER_SIZE)  # type: ignore[arg-type]

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer, nbytes, flags)


def _deadline_connection(base: Any) -> Any:
    """``base`` (urllib3's HTTP or HTTPS connection) with the call's deadline on its reads."""

    class Connection(base):  # type: ignore[misc]
        _deadline: float | None = None

        def request(self, *args: Any, **kwargs: Any) -> None:
            timeout = getattr(_CALL, "timeout", None)
            self._deadline = None if timeout is None else time.monotonic() + timeout
            super().request(*args, **kwargs)

        def getresponse(self, *args: Any, **kwargs: Any) -> Any:
            sock: Any = self.sock  # type: ignore[has-type]
            deadline = self._deadline
            if deadline is None or not isinstance(sock, socket.socket):
                return super().getresponse(*args, **kwargs)
            wrapped: Any = _DeadlineSocket(sock, deadline)
            self.sock = wrapped
            try:
                return super().getresponse(*args, **kwargs)
            finally:
                if self.sock is wrapped:  # else the answer closed the connection
                    self.sock = sock

    Connection.__name__ = Connection.__qualname__ = f"Deadline{base.__name__}"
    return Connection


def _with_deadlines(manager: Any) -> Any:
    import urllib3

    class HTTPPool(urllib3.HTTPConnectionPool):
        ConnectionCls = _deadline_connection(urllib3.connection.HTTPConnection)

    class HTTPSPool(urllib3.HTTPSConnectionPool):
        ConnectionCls = _deadline_connection(urllib3.connection.HTTPSConnection)

    manager.pool_classes_by_scheme = {"http": HTTPPool, "https": HTTPSPool}
    return manager


class Urllib3Sender:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: Any = None
        #: Per provider URL, the manager that sends to it: the direct pool, or a proxy's.
        self._routes: dict[str, Any] = {}
        self._proxied: dict[str, Any] = {}

    def _manager(self, url: str | None = None) -> Any:
        route = self._routes.get(url) if url is not None else None
        if route is not None:
            return route
        with self._lock:  # threads: make exactly one pool per route
            import urllib3

            if self._pool is None:
                self._pool = _with_deadlines(
                    urllib3.PoolManager(num_pools=16, maxsize=POOL_SIZE, block=True)
                )
            if url is None:
                return self._pool
            proxy = env_proxy(url)
            if proxy is None:
                route = self._pool
            else:
                route = self._proxied.get(proxy)
                if route is None:
                    route = self._proxied[proxy] = _with_deadlines(
                        urllib3.ProxyManager(proxy, num_pools=16, maxsize=POOL_SIZE, block=True)
                    )
            self._routes[url] = route
            return route

    def send(self, call: ProviderCall) -> ProviderResponse | CallProblem:
        import urllib3
        from urllib3 import exceptions as errors

        request = call.request
        timeout = call.timeout
        _CALL.timeout = timeout
        try:
            response = self._manager(request.url).urlopen(
                request.method,
                request.url,
                body=request.body,
                headers=dict(request.headers),
                retries=False,
                redirect=False,
                timeout=urllib3.Timeout(total=timeout),
                pool_timeout=timeout,
                preload_content=True,
            )
        except errors.EmptyPoolError:
            return BUSY
        except errors.NewConnectionError:  # a subclass of ConnectTimeoutError, so first
            return CallProblem("connect_error")
        except errors.TimeoutError:
            return TIMEOUT
        except (errors.ProtocolError, errors.DecodeError):
            return CallProblem("protocol_error")
        except Exception:
            return CallProblem("transport_error")
        finally:
            _CALL.timeout = None
        return ProviderResponse(response.status, response.headers, response.data)

    def close(self) -> None:
        with self._lock:
            pools = [self._pool, *self._proxied.values()]
            self._pool, self._proxied, self._routes = None, {}, {}
        for pool in pools:
            if pool is not None:
                pool.clear()


class SyncHttpxSender:
    """Calls through the caller's httpx/httpx2 ``Client`` (the caller closes it)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._module = sys.modules[type(client).__module__.partition(".")[0]]

    def send(self, call: ProviderCall) -> ProviderResponse | CallProblem:
        module = self._module
        request = module.Request(
            call.request.method,
            call.request.url,
            headers=list(call.request.headers),
            content=call.request.body,
        )
        request.extensions["timeout"] = module.Timeout(call.timeout).as_dict()
        try:
            response = self._client.send(request)
        except module.PoolTimeout:
            return BUSY
        except module.TimeoutException:
            return TIMEOUT
        except module.ConnectError:
            return CallProblem("connect_error")
        except module.RemoteProtocolError:
            return CallProblem("protocol_error")
        except Exception:
            return CallProblem("transport_error")
        return ProviderResponse(response.status_code, response.headers, response.content)

    def close(self) -> None:
        return None


__all__ = ["SyncHttpxSender", "Urllib3Sender"]
