"""One writer per stream: leases with an owner token, renewed while held.

begin.lua takes the lease; this module tracks it in the process. A lease's ``deadline`` is the
monotonic time by which it surely ran out if nobody renewed it (measured from when the renewal
was *sent*), and every platform call ends before it (``workers.channels.http.guarded``). One
background thread renews every held lease in one pipeline; a renewal that fails or errors marks
the lease lost, so the pass stops writing before another worker can take the stream over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

from tokenrelay.store import Store

log = logging.getLogger(__name__)


class LeaseLost(RuntimeError):
    """Another worker owns the stream now (or we cannot tell): stop writing to it."""


@dataclass
class Lease:
    stream_id: str
    token: str
    #: monotonic seconds by which the lease surely expired unless renewed
    deadline: float
    lost: bool = field(default=False)


def owner_token() -> str:
    """A token unique to this holder: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class LeaseKeeper:
    """Tracks, renews (from one background thread) and releases this process's leases."""

    def __init__(self, store: Store, ttl: float) -> None:
        self.store = store
        self.ttl = ttl
        self.ttl_ms = int(ttl * 1000)
        self._held: dict[str, Lease] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def track(self, stream_id: str, token: str, taken_at: float) -> Lease:
        """Start tracking a lease begin.lua granted; ``taken_at``: monotonic time the request
        was sent (the lease runs out ``ttl`` after that at the latest)."""
        lease = Lease(stream_id, token, taken_at + self.ttl)
        with self._lock:
            self._held[token] = lease
        self._ensure_thread()
        return lease

    def untrack(self, lease: Lease) -> None:
        with self._lock:
            self._held.pop(lease.token, None)

    def check(self, lease: Lease, ttl: float | None = None) -> float:
        """Renew now (before a platform call) to live ``ttl`` s (default: the lease TTL);
        returns the new deadline. LeaseLost if another worker owns the stream, or Redis cannot
        confirm that we still do."""
        if lease.lost:
            raise LeaseLost(lease.stream_id)
        ttl = self.ttl if ttl is None else ttl
        sent = time.monotonic()
        try:
            ok = self.store.renew(lease.stream_id, lease.token, int(ttl * 1000))
        except Exception as exc:  # cannot confirm: behave as if lost (never write unfenced)
            lease.lost = True
            raise LeaseLost(f"{lease.stream_id}: renewal failed: {type(exc).__name__}") from None
        if not ok:
            lease.lost = True
            raise LeaseLost(lease.stream_id)
        lease.deadline = sent + ttl
        return lease.deadline

    def release(self, lease: Lease) -> None:
        """Give the lease back (compare-and-delete); errors are logged, the TTL ends it."""
        self.untrack(lease)
        try:
            self.store.release(lease.stream_id, lease.token)
        except Exception as exc:
            log.warning("stream %s: lease not released (%s); it runs out in %.1f s",
                        lease.stream_id, type(exc).__name__, self.ttl)

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
            time.sleep(self.ttl / 3)
            with self._lock:
                held = [lease for lease in self._held.values() if not lease.lost]
            if not held:
                continue
            sent = time.monotonic()
            try:
                answers = self.store.renew_many(
                    [(lease.stream_id, lease.token) for lease in held], self.ttl_ms
                )
            except Exception as exc:
                log.warning("lease renewal failed (%s): %d leases count as lost",
                            type(exc).__name__, len(held))
                answers = [False] * len(held)
            for lease, ok in zip(held, answers, strict=True):
                if ok:
                    lease.deadline = max(lease.deadline, sent + self.ttl)
                else:
                    lease.lost = True
