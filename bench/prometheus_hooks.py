"""Cost of the captcha_guard.prometheus hooks per event, in one process and in multiprocess
mode (PROMETHEUS_MULTIPROC_DIR set: every update writes to a memory-mapped file).

    python bench/prometheus_hooks.py            # in-process registry
    python bench/prometheus_hooks.py --multiproc
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import timeit

if "--multiproc" in sys.argv:
    directory = tempfile.mkdtemp()
    atexit.register(shutil.rmtree, directory, True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory

from prometheus_client import CollectorRegistry

from captcha_guard._breaker import State
from captcha_guard._events import BreakerEvent, VerdictEvent
from captcha_guard._verdict import Outcome
from captcha_guard.prometheus import event_hooks

hooks = event_hooks(CollectorRegistry())
verdict = hooks["verdict"][0]
breaker = hooks["breaker"][0]
passed = VerdictEvent("geetest", "/login", Outcome.PASSED, "ok", 0.04)
fallback = VerdictEvent("geetest", "/login", Outcome.FALLBACK, "t", None, "allowed")
opened = BreakerEvent("geetest", State.CLOSED, State.OPEN)

mode = "multiprocess" if "--multiproc" in sys.argv else "in-process"
for name, call in [
    ("verdict (passed, with duration)", lambda: verdict(passed)),
    ("verdict (fallback, no call)", lambda: verdict(fallback)),
    ("breaker transition", lambda: breaker(opened)),
]:
    n = 20_000
    best = min(timeit.repeat(call, number=n, repeat=5)) / n
    print(f"{mode:12} {name:34} {best * 1e6:6.2f} µs")
