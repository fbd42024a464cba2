"""MemoryReplayStore: once per key, until it expires, never more than max_entries."""

from __future__ import annotations

import threading

import pytest

from captcha_guard._replay import MemoryReplayStore, ReplayStoreFull


def test_a_key_is_remembered_once() -> None:
    store = MemoryReplayStore()
    assert store.remember("a", expires_at=100.0, now=0.0) is True
    assert store.remember("a", expires_at=100.0, now=50.0) is False
    assert store.remember("b", expires_at=100.0, now=50.0) is True
    assert len(store) == 2


def test_a_key_is_kept_up_to_its_expiry_instant_then_dropped() -> None:
    store = MemoryReplayStore()
    store.remember("a", expires_at=100.0, now=0.0)
    assert store.remember("a", expires_at=100.0, now=100.0) is False
    assert store.remember("a", expires_at=200.0, now=100.5) is True


def test_a_full_store_refuses_rather_than_forgets() -> None:
    store = MemoryReplayStore(max_entries=2)
    store.remember("a", expires_at=100.0, now=0.0)
    store.remember("b", expires_at=150.0, now=0.0)
    with pytest.raises(ReplayStoreFull):
        store.remember("c", expires_at=200.0, now=10.0)
    # Both old keys are still refused: nothing was forgotten to make room.
    assert store.remember("a", expires_at=100.0, now=10.0) is False
    assert store.remember("b", expires_at=150.0, now=10.0) is False
    # Once the first expires there is room again.
    assert store.remember("c", expires_at=200.0, now=101.0) is True
    assert len(store) == 2


def test_expired_entries_are_dropped_so_the_size_stays_bounded() -> None:
    store = MemoryReplayStore(max_entries=10)
    for second in range(1000):
        assert store.remember(f"k{second}", expires_at=second + 5.0, now=float(second))
        assert len(store) <= 6


def test_threads_racing_on_one_key_get_exactly_one_first_use() -> None:
    store = MemoryReplayStore()
    start = threading.Barrier(8)
    results: list[bool] = []
    lock = threading.Lock()

    def race() -> None:
        start.wait()
        first = store.remember("same", expires_at=100.0, now=0.0)
        with lock:
            results.append(first)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "10"])
def test_max_entries_must_be_a_positive_int(bad: object) -> None:
    with pytest.raises(ValueError):
        MemoryReplayStore(max_entries=bad)  # type: ignore[arg-type]
