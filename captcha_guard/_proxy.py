"""Which proxy a provider call goes through: the environment's, as httpx and requests read it.

``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``NO_PROXY`` (and the lower-case spellings), read once per
provider URL by each door's default client: neither aiohttp (without ``trust_env``, which
costs two thread hops per request) nor urllib3 reads them by itself.
"""

from __future__ import annotations

from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url``, or None."""
    parts = urlsplit(url)
    proxy = getproxies().get(parts.scheme)
    if not proxy or (parts.hostname and proxy_bypass(parts.hostname)):
        return None
    return proxy


__all__ = ["env_proxy"]
