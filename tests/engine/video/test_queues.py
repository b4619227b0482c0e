"""The byte-bounded queue between stages: memory bound, one oversize item admitted, abort wakes waiters."""

from __future__ import annotations

import threading
import time

import pytest

from styleengine.engine.video.queues import Aborted, ByteQueue
from styleengine.engine.video.stats import percentile


def test_put_blocks_when_bytes_would_exceed_the_bound():
    q = ByteQueue("t", max_bytes=100, max_items=10)
    q.put("a", 60)
    done = threading.Event()

    def producer():
        q.put("b", 60)  # 120 > 100: must wait for the consumer
        done.set()

    threading.Thread(target=producer, daemon=True).start()
    assert not done.wait(0.3)
    assert q.get() == "a"
    assert done.wait(2) and q.get() == "b"
    assert q.report()["max_items"] == 1 and q.put_wait > 0.2


def test_single_oversize_item_is_admitted_and_abort_wakes_waiters():
    q = ByteQueue("t", max_bytes=10)
    q.put("huge", 10_000)  # an empty queue always takes one item: no deadlock on a 4K frame
    errors = []

    def blocked():
        try:
            q.put("more", 5)
        except Aborted:
            errors.append("aborted")

    t = threading.Thread(target=blocked, daemon=True)
    t.start()
    time.sleep(0.2)
    q.abort()
    t.join(2)
    assert errors == ["aborted"]
    with pytest.raises(Aborted):
        q.get()


def test_percentile_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([3, 1, 2], 50) == 2
    assert percentile(list(range(1, 101)), 95) == 95
