"""One listener per producer wakes every waiting ``stop()`` (threads and asyncio alike).

A waiting stop holds no Redis connection of its own: it waits on an event. One thread keeps a
pub/sub subscription on the producer's own channel, where finish.lua publishes the id of every
stream that finished, and once a second it also reads the results of all waiting streams in one
pipelined round trip (pub/sub is at-most-once: a message lost to a reconnect costs one second,
never a result). The same look puts a stream whose final pass is on no schedule back on it (its
schedule entry was lost), and reports a stream whose state Redis lost at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from tokenrelay.store import Store

log = logging.getLogger(__name__)

#: seconds between two looks at every waiting stream's result
POLL_EVERY = 1.0


class _Entry:
    """One stream's wait: an event for threads, callbacks for event loops."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.result: dict[str, Any] | None = None
        self.callbacks: list[Callable[[dict[str, Any]], None]] = []
        self.lock = threading.Lock()

    def resolve(self, result: dict[str, Any]) -> None:
        with self.lock:
            if self.event.is_set():
                return
            self.result = result
            self.event.set()
            callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            callback(result)

    def on_done(self, callback: Callable[[dict[str, Any]], None]) -> None:
        with self.lock:
            if not self.event.is_set():
                self.callbacks.append(callback)
                return
        assert self.result is not None
        callback(self.result)


class ResultWaiter:
    """Waits for the results of any number of streams with one thread and two connections."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.channel = f"tr:done:{uuid.uuid4().hex}"
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def entry(self, stream_id: str) -> _Entry:
        """The wait of ``stream_id`` (registered on first call; starts the listener)."""
        with self._lock:
            entry = self._entries.get(stream_id)
            if entry is None:
                entry = self._entries[stream_id] = _Entry()
                self._wake.set()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="tokenrelay-waiter", daemon=True
                )
                self._thread.start()
        return entry

    def wait(self, stream_id: str, timeout: float) -> dict[str, Any] | None:
        """Block the calling thread up to ``timeout`` s; the result, or None."""
        entry = self.entry(stream_id)
        self._check_now(entry, stream_id)
        entry.event.wait(timeout)
        return entry.result

    def _check_now(self, entry: _Entry, stream_id: str) -> None:
        """A stream may have finished before anybody listened for it: look once now (a Redis
        hiccup here is harmless, the listener looks again within a second)."""
        if not entry.event.is_set():
            try:
                self._resolve([stream_id])
            except RedisError as exc:
                log.debug("tokenrelay stop listener: first look failed: %s", exc)

    async def await_result(self, stream_id: str, timeout: float) -> dict[str, Any] | None:
        """The asyncio twin of :meth:`wait` (no thread per waiting stream)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()

        def done(result: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(
                lambda: future.done() or future.set_result(result)  # type: ignore[func-returns-value]
            )

        entry = self.entry(stream_id)
        entry.on_done(done)
        await asyncio.to_thread(self._check_now, entry, stream_id)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None

    def forget(self, stream_id: str) -> None:
        with self._lock:
            self._entries.pop(stream_id, None)

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    # the listener ----------------------------------------------------------------------------
    def _run(self) -> None:
        pubsub = None
        while not self._closed:
            try:
                if pubsub is None:
                    pubsub = self.store.redis.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(self.channel)
                self._poll()
                self._listen(pubsub)
            except RedisError as exc:
                log.warning("tokenrelay stop listener: %s (retrying)", exc)
                if pubsub is not None:
                    with contextlib.suppress(RedisError):
                        pubsub.close()
                pubsub = None
                self._wake.wait(0.5)
        if pubsub is not None:
            pubsub.close()

    def _listen(self, pubsub: Any) -> None:
        """Take finish messages for up to POLL_EVERY seconds."""
        deadline = POLL_EVERY
        while deadline > 0 and not self._closed:
            message = pubsub.get_message(timeout=min(0.2, deadline))
            deadline -= 0.2
            if message and message.get("type") == "message":
                self._resolve([message["data"].decode()])

    def _waiting(self) -> list[str]:
        with self._lock:
            return [sid for sid, e in self._entries.items() if not e.event.is_set()]

    def _resolve(self, stream_ids: list[str]) -> None:
        found = self.store.results(stream_ids)
        for sid, result in found.items():
            if result is not None:
                with self._lock:
                    entry = self._entries.pop(sid, None)
                if entry is not None:
                    entry.resolve(result)

    def _poll(self) -> None:
        waiting = self._waiting()
        if not waiting:
            return
        self._resolve(waiting)
        still = self._waiting()
        if not still:
            return
        # a final pass that is on no schedule (its entry was lost): put it back
        lost = self.store.unscheduled(still)
        if lost:
            self.store.schedule([(sid, 0) for sid in lost])
