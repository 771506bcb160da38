"""One writer per stream: leases with an owner token, renewed by one thread per process.

A killed worker stops renewing, so its lease expires within ``ttl`` and another worker takes
the stream over; a live one keeps it for as long as it works on the stream.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from workers.state import Store


class LeaseLost(RuntimeError):
    """Another worker owns the stream now; stop writing to it."""


@dataclass
class Lease:
    stream_id: str
    token: str
    lost: bool = field(default=False)


def owner_token() -> str:
    """A token unique to this holder: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class LeaseKeeper:
    """Acquires, renews (from one background thread) and releases stream leases."""

    def __init__(self, store: Store, ttl: float) -> None:
        self.store = store
        self.ttl_ms = int(ttl * 1000)
        self._held: dict[str, Lease] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def hold(self, stream_id: str) -> Iterator[Lease | int]:
        """Yields the Lease, or (when another worker holds it) the ms its lease still lives."""
        token = owner_token()
        got = self.store.acquire(stream_id, token, self.ttl_ms)
        if got != 1:
            yield got
            return
        lease = Lease(stream_id, token)
        with self._lock:
            self._held[token] = lease
        self._ensure_thread()
        try:
            yield lease
        finally:
            with self._lock:
                self._held.pop(token, None)
            self.store.release(stream_id, token)

    def check(self, lease: Lease) -> None:
        """Renew now (before a platform call); LeaseLost if another worker owns the stream."""
        if lease.lost or not self.store.renew(lease.stream_id, lease.token, self.ttl_ms):
            lease.lost = True
            raise LeaseLost(lease.stream_id)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._renew_loop, name="tokenrelay-lease", daemon=True
                    )
                    self._thread.start()

    def _renew_loop(self) -> None:
        while True:
            self._wake.wait(self.ttl_ms / 3000.0)
            with self._lock:
                held = list(self._held.values())
            for lease in held:
                try:
                    if not self.store.renew(lease.stream_id, lease.token, self.ttl_ms):
                        lease.lost = True
                except Exception:  # Redis hiccup: the next round tries again
                    continue
