"""The background pusher: moves buffered tokens from streams to Redis in batches.

``emit()`` only appends to an in-process deque; this thread drains every dirty stream, sends
one Redis pipeline per batch (append + arm, atomically per stream; each chunk numbered, so a
batch re-sent after a lost answer is applied once) and puts every stream it armed on its
shard's flush schedule. Every ``SWEEP_INTERVAL`` it also sends a heartbeat for every open
stream (one pipeline for all): it keeps streams of a live agent alive through long tool calls
(the watchdog only finalizes streams whose producer went silent) and re-arms a stream whose
schedule entry was lost.
"""

from __future__ import annotations

import logging
import threading
import time

from redis.exceptions import RedisError

from producers.buffer import TokenBuffer
from producers.errors import BackendUnavailable
from tokenrelay.config import Settings
from tokenrelay.store import Store

log = logging.getLogger(__name__)

#: seconds between heartbeats of open streams (keep-alive and re-arm); at most a quarter of
#: the idle timeout, so the watchdog never mistakes a live stream for an abandoned one
SWEEP_INTERVAL = 1.0
#: seconds tokens gather before the next batch (a stream's first tokens never wait: the first
#: text is what users see first; later edits wait a flush interval anyway)
BATCH_GAP = 0.005


class Pusher:
    """One thread per producer; streams' buffers register themselves when they have new
    tokens."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.sweep_every = min(SWEEP_INTERVAL, settings.idle_timeout / 4)
        self.lock = threading.Lock()  # serializes pushes, so chunks keep their order
        self._dirty: dict[str, TokenBuffer] = {}
        self._open: dict[str, TokenBuffer] = {}
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tokenrelay-pusher", daemon=True)
        self._thread.start()

    def add(self, stream: TokenBuffer) -> None:
        """Heartbeat this open stream until it is discarded."""
        self._open[stream.id] = stream

    def discard(self, stream_id: str) -> None:
        """No more heartbeats for this stream (stopped, or its agent is gone)."""
        self._open.pop(stream_id, None)

    def wake(self, stream: TokenBuffer) -> None:
        """Called by emit() when a stream gets its first token since the last batch."""
        self._dirty[stream.id] = stream
        if not stream.pushed:
            self._urgent.set()
        self._wake.set()

    def _take_dirty(self) -> list[TokenBuffer]:
        """Pop every registered stream; popitem is atomic, so a concurrent wake() is never lost
        (it lands before a pop, or after the loop and then sets the event again)."""
        streams = []
        while True:
            try:
                streams.append(self._dirty.popitem()[1])
            except KeyError:
                return streams

    def close(self) -> None:
        """Stop the thread, then push what open streams still buffer (best effort)."""
        self._stopping = True
        self._wake.set()
        self._urgent.set()
        self._thread.join(timeout=5)
        leftover = list({s.id: s for s in self._take_dirty() + list(self._open.values())}.values())
        if leftover:
            try:
                self.push(leftover)
            except BackendUnavailable as exc:
                log.warning("tokenrelay pusher: tokens of %d streams not pushed: %s",
                            len(leftover), exc)

    def push(self, streams: list[TokenBuffer], arm_only: bool = False) -> None:
        """Push the buffered tokens of ``streams`` now (in the caller's thread); ``arm_only``
        also sends a heartbeat for streams with nothing buffered."""
        with self.lock:
            batch = []
            owners = []
            for stream in streams:
                for chunk, mark, seq in stream.drain():
                    batch.append((stream.id, chunk, mark, seq))
                    owners.append(stream)
                    stream.pushed = stream.pushed or bool(chunk)
                if arm_only and not stream.pending:
                    batch.append((stream.id, b"", False, stream.seq))  # applied already: a beat
                    owners.append(stream)
            if not batch:
                return
            try:
                answers = self.store.push_many(batch, self.settings.max_stream_chars * 4)
                armed = [(s.id, due) for s, (answer, due) in zip(owners, answers, strict=True)
                         if answer == "armed"]
                self.store.schedule(armed, sooner_only=False)
            except RedisError as exc:
                # the drained chunks stay in each stream's _pending and go out with the next
                # try; their numbers make sure Redis applies each of them once
                raise BackendUnavailable(f"Redis unreachable: {exc}") from None
            for stream in streams:
                stream.pending.clear()
            for stream, (answer, _) in zip(owners, answers, strict=True):
                if answer in ("closed", "unknown", "too_long"):
                    stream.rejected(answer)

    def _run(self) -> None:
        last_sweep = time.monotonic()
        while not self._stopping:
            self._wake.wait(self.sweep_every)
            self._wake.clear()
            dirty = self._take_dirty()
            now = time.monotonic()
            sweep = now - last_sweep >= self.sweep_every
            if sweep:
                last_sweep = now
                dirty = list({s.id: s for s in dirty + list(self._open.values())}.values())
            if dirty:
                try:
                    self.push(dirty, arm_only=sweep)
                except BackendUnavailable as exc:
                    log.warning("tokenrelay pusher: %s (tokens kept, will retry)", exc)
                    for stream in dirty:
                        self._dirty[stream.id] = stream
                    time.sleep(0.2)
                    continue
                except Exception:
                    log.exception("tokenrelay pusher: unexpected error (tokens kept)")
            self._urgent.wait(BATCH_GAP)
            self._urgent.clear()
