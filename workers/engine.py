"""The flush engine: each worker process claims due streams from the shared schedules and runs
their passes on a thread pool, with no broker message per flush.

A stream is on its shard's schedule (``tr:due:{N}``, stream ids by due time on the server's
clock) while it has something to deliver: a push arms it, a pass reschedules it (the next
interval, a budget ticket, a backoff) or removes it. Claiming moves an entry ``claim`` seconds
ahead by the lease's TTL, so the entries of a worker killed mid-pass come due again when its
lease runs out: another worker picks the stream up within ``lease_ttl`` and edits the same
message. (A pass that outlives its claim is safe: a second claimer finds the lease busy.) The same
loop runs the watchdog schedule (``tr:watch:{N}``), which finalizes streams whose producer
went silent.

Any number of worker processes on any hosts share the schedules; a claim is atomic, so each
due entry goes to one of them. A Celery bootstep starts the engine with every worker.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tokenrelay.config import Settings
from tokenrelay.store import Store
from workers import metrics
from workers.flusher import Flusher, Next

log = logging.getLogger(__name__)

#: longest sleep between two looks at the schedules, seconds (bounds how late a due entry runs)
MAX_NAP = 0.05
#: shortest sleep when nothing is due, seconds
MIN_NAP = 0.002
#: seconds between two looks at the watchdog schedules
WATCH_EVERY = 1.0


@dataclass
class EngineStats:
    """Counters of one engine (read by tests and benchmarks)."""

    claimed: int = 0
    passes: int = 0
    errors: int = 0


class FlushEngine:
    """Claims due streams and runs their passes; ``start()`` / ``stop()``."""

    def __init__(self, flusher: Flusher, settings: Settings) -> None:
        self.flusher = flusher
        self.store: Store = flusher.store
        self.settings = settings
        self.threads = settings.flush_threads
        self.stats = EngineStats()
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="tokenrelay-flush")
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._settled: dict[str, list[tuple[str, int, int]]] = {}
        self._settle_lock = threading.Lock()

    def start(self) -> FlushEngine:
        self._thread = threading.Thread(target=self._loop, name="tokenrelay-engine", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; let passes in progress end (their entries are settled)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=False)
        self._flush_settled()

    # the loop --------------------------------------------------------------------------------
    def _loop(self) -> None:
        due = self.store.schedules.all_due()
        watched = self.store.schedules.all_watch()
        next_watch = 0.0
        errors = 0
        while not self._stop.is_set():
            try:
                self._flush_settled()
                if self.flusher.pending_orphans:
                    self.flusher.hand_over_pending()
                nap = MAX_NAP
                random.shuffle(due)  # no shard is always served first
                for key in due:
                    nap = min(nap, self._claim(key, self._run))
                if time.monotonic() >= next_watch:
                    next_watch = time.monotonic() + WATCH_EVERY
                    for key in watched:
                        self._claim(key, self._watch)
                errors = 0
            except Exception as exc:  # Redis down: keep trying, loudly but not in a hot loop
                errors += 1
                self.stats.errors += 1
                metrics.engine_error("loop")
                nap = min(5.0, 0.1 * 2 ** min(errors, 6))
                log.warning("flush engine: %s: %s (retrying in %.1f s)",
                            type(exc).__name__, exc, nap)
            self._stop.wait(max(MIN_NAP, nap))

    def _free(self) -> int:
        with self._busy_lock:
            return self.threads - self._busy

    def _claim(self, key: str, work) -> float:  # type: ignore[no-untyped-def]
        """Claim what is due on one schedule and hand it to the pool; returns the seconds until
        its next entry is due (capped by MAX_NAP)."""
        free = self._free()
        claims = self.store.claim(
            key, free, int(self.settings.lease_ttl * 1000), random.randrange(1000)
        )
        for stream_id, claim in claims.items:
            with self._busy_lock:
                self._busy += 1
            self.stats.claimed += 1
            metrics.busy(1)
            self._pool.submit(self._guarded, work, key, stream_id, claim)
        if claims.items and len(claims.items) == free:
            return 0.0  # more may be due: no nap while the pool has room
        if claims.next_due_ms < 0:
            return MAX_NAP
        return min(MAX_NAP, max(0.0, (claims.next_due_ms - claims.now_ms) / 1000.0))

    def _guarded(self, work, key: str, stream_id: str, claim: int) -> None:  # type: ignore[no-untyped-def]
        due = claim  # on an unexpected error the entry comes due again when its claim ends
        try:
            due = work(stream_id)
        except Exception:
            self.stats.errors += 1
            metrics.engine_error("pass")
            log.exception("stream %s: pass failed; it is retried when its claim runs out",
                          stream_id)
        finally:
            with self._busy_lock:
                self._busy -= 1
            metrics.busy(-1)
            if due != claim:
                with self._settle_lock:
                    self._settled.setdefault(key, []).append((stream_id, claim, due))

    def _flush_settled(self) -> None:
        """Reschedule or remove the entries of finished passes (one round trip per schedule)."""
        with self._settle_lock:
            settled, self._settled = self._settled, {}
        for key, entries in settled.items():
            self.store.release_claims(key, entries)

    # work ------------------------------------------------------------------------------------
    def _run(self, stream_id: str) -> int:
        self.stats.passes += 1
        nxt: Next = self.flusher.run(stream_id)
        return nxt.due_ms

    def _watch(self, stream_id: str) -> int:
        """The watchdog: the next time to look (server ms), or -1 when the stream is done."""
        return watch(self.store, self.settings, stream_id)


def watch(store: Store, settings: Settings, stream_id: str) -> int:
    """Finalize a stream whose producer went silent (no text and no heartbeat for its idle
    timeout); otherwise answer when to look again."""
    meta = store.meta(stream_id)
    status = meta.get("status")
    if not meta or status == "closed":
        return -1
    now = store.server_now_ms()
    if status == "closing":
        # its final pass is scheduled; make sure it stays so, and look again later
        store.schedule([(stream_id, now)])
        return now + 60_000
    idle_ms = int(meta.get("idle_ms") or settings.idle_timeout * 1000)
    alive = max(int(meta.get("touched_ms") or 0), int(meta.get("alive_ms") or 0))
    if now - alive < idle_ms:
        return alive + idle_ms
    log.warning("stream %s: no tokens and no heartbeat for %d s, finalizing it",
                stream_id, (now - alive) // 1000)
    metrics.abandoned()
    store.close(stream_id, "abandoned")
    store.schedule([(stream_id, now)])
    return now + 60_000
