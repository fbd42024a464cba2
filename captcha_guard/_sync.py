"""Sending a ProviderCall from the WSGI door: a pooled urllib3 client by default, an httpx
(or httpx2) ``Client`` when given one. Thread-safe: one sender serves every worker thread.

urllib3 was chosen by measurement (bench/README.md): about half the CPU of httpx's ``Client``
per call. A wait for a free connection is bounded by the provider's timeout and is ``BUSY``
(ours), never the provider's failure. The provider's timeout bounds connecting and reading
(urllib3's ``total``), so a slow answer cannot hold a thread much past it.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from ._flow import BUSY, CallProblem, ProviderCall
from ._proxy import env_proxy
from .providers._wire import ProviderResponse

#: Connections kept per provider host; beyond that, threads wait (bounded) for one.
POOL_SIZE = 100

TIMEOUT: CallProblem = CallProblem("timeout")


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
                self._pool = urllib3.PoolManager(num_pools=16, maxsize=POOL_SIZE, block=True)
            if url is None:
                return self._pool
            proxy = env_proxy(url)
            if proxy is None:
                route = self._pool
            else:
                route = self._proxied.get(proxy)
                if route is None:
                    route = self._proxied[proxy] = urllib3.ProxyManager(
                        proxy, num_pools=16, maxsize=POOL_SIZE, block=True
                    )
            self._routes[url] = route
            return route

    def send(self, call: ProviderCall) -> ProviderResponse | CallProblem:
        import urllib3
        from urllib3 import exceptions as errors

        request = call.request
        timeout = call.timeout
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
