"""Hand-offs between pipeline threads: a FIFO bounded in bytes (file mode) and a newest-wins slot (live mode)."""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

EOF = object()  # end of stream marker, travels through every queue


class Aborted(Exception):
    """The pipeline is stopping (error or interrupt); the stage should return."""


class ByteQueue:
    """Blocking FIFO bounded by the bytes it holds (and an item cap), so 4K frames cannot exhaust memory.

    One item is always admitted into an empty queue, whatever its size, so a single huge frame cannot deadlock.
    `abort()` wakes every waiter with `Aborted`. Wait times are accumulated for the stats.
    """

    def __init__(self, name: str, max_bytes: int, max_items: int = 64):
        self.name = name
        self.max_bytes = max(1, int(max_bytes))
        self.max_items = max(1, int(max_items))
        self._items: collections.deque[tuple[Any, int]] = collections.deque()
        self._bytes = 0
        self._cond = threading.Condition()
        self._aborted = False
        self.put_wait = 0.0
        self.get_wait = 0.0
        self.max_seen_items = 0
        self.max_seen_bytes = 0

    def put(self, item: Any, nbytes: int = 0) -> None:
        t0 = time.perf_counter()
        with self._cond:
            while not self._aborted and self._items and (
                    self._bytes + nbytes > self.max_bytes or len(self._items) >= self.max_items):
                self._cond.wait(0.1)
            if self._aborted:
                raise Aborted
            self._items.append((item, nbytes))
            self._bytes += nbytes
            self.max_seen_items = max(self.max_seen_items, len(self._items))
            self.max_seen_bytes = max(self.max_seen_bytes, self._bytes)
            self._cond.notify_all()
        self.put_wait += time.perf_counter() - t0

    def get(self) -> Any:
        t0 = time.perf_counter()
        with self._cond:
            while not self._aborted and not self._items:
                self._cond.wait(0.1)
            if self._aborted:
                raise Aborted
            item, nbytes = self._items.popleft()
            self._bytes -= nbytes
            self._cond.notify_all()
        self.get_wait += time.perf_counter() - t0
        return item

    def get_nowait(self) -> Any | None:
        """The next item if one is ready (never EOF-blind: EOF is returned like any item), else None."""
        with self._cond:
            if self._aborted:
                raise Aborted
            if not self._items:
                return None
            item, nbytes = self._items.popleft()
            self._bytes -= nbytes
            self._cond.notify_all()
            return item

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._items.clear()
            self._bytes = 0
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)

    def report(self) -> dict[str, float]:
        return {"put_wait_s": self.put_wait, "get_wait_s": self.get_wait, "max_items": self.max_seen_items,
                "max_mib": round(self.max_seen_bytes / 2**20, 2), "limit_mib": round(self.max_bytes / 2**20, 2)}


class LatestSlot:
    """One-slot holder that keeps only the newest item: a slow consumer never builds up latency.

    Every `put` gets a sequence number; `get` waits for one newer than the last it returned and reports how many
    items were overwritten unseen (the drops).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._seq = 0
        self._closed = False
        self.dropped = 0
        self._taken_seq = 0

    def put(self, item: Any) -> None:
        with self._cond:
            if self._seq > self._taken_seq and self._item is not None and self._item is not EOF:
                self.dropped += 1  # the previous item was never taken
            self._item = item
            self._seq += 1
            self._cond.notify_all()

    def close(self) -> None:
        """Mark the end: consumers receive EOF once the pending item (if any) is taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Any:
        """Newest untaken item, EOF when closed and drained, None on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._seq == self._taken_seq:
                if self._closed:
                    return EOF
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(0.1 if remaining is None else min(0.1, remaining))
            self._taken_seq = self._seq
            item, self._item = self._item, None
            self._cond.notify_all()
            return item

    def wait_taken(self, stop: threading.Event) -> None:
        """Block until the current item was taken (lossless pacing for file sources played as fast as possible)."""
        with self._cond:
            while self._seq != self._taken_seq and not stop.is_set():
                self._cond.wait(0.1)
