"""captcha_guard's tests, in folders that mirror the package's."""

import ssl
from pathlib import Path

#: The repository's root, for the tests that read its files or start processes in it.
ROOT = Path(__file__).resolve().parent.parent

#: The one TLS context of every httpx client, transport and call the tests make (``verify=``).
#: httpx otherwise builds one per client, loading the CA bundle each time: about 27 ms of
#: CPU, and the tests make thousands of clients (one per request where a request must take a
#: fresh connection). The same CA bundle, so the same verification.
TLS = ssl.create_default_context()
