"""Stream: what an agent holds while it writes one reply; StopHandle: a stop in progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from producers.buffer import BOUNDARY, TokenBuffer
from producers.errors import BackendUnavailable, StopTimeout, StreamClosed, StreamTooLong
from producers.pusher import Pusher
from producers.waiter import ResultWaiter
from tokenrelay.results import StopResult
from tokenrelay.store import Store


class Stream:
    """One reply being streamed to one chat. ``emit()`` never waits on the network.

    A producer makes it (``StreamProducer.start``) and hands it its collaborators: the
    ``pusher`` that moves its tokens to Redis, the ``waiter`` that wakes a waiting stop, the
    ``store`` and ``close``, which closes the stream and schedules its final pass.
    """

    def __init__(
        self,
        stream_id: str,
        channel: str,
        chat_id: str,
        *,
        store: Store,
        pusher: Pusher,
        waiter: ResultWaiter,
        close: Callable[[str], None],
        max_chars: int,
    ) -> None:
        self.id = stream_id
        self.channel = channel
        self.chat_id = chat_id
        self.buffer = TokenBuffer(stream_id)
        self._store = store
        self._pusher = pusher
        self._waiter = waiter
        self._close = close
        self._limit = max_chars
        self._chars = 0
        self._tail = ""
        self._stop_lock = threading.Lock()
        self._handle: StopHandle | None = None

    def __repr__(self) -> str:
        return f"Stream(id={self.id!r}, channel={self.channel!r}, chat_id={self.chat_id!r})"

    @property
    def closed(self) -> bool:
        return self.buffer.stopped or self.buffer.rejection is not None

    def emit(self, token: str) -> None:
        """Append ``token`` to the reply. Cheap: an in-memory append; a thread pushes batches."""
        if not isinstance(token, str):
            raise TypeError(f"emit() takes str tokens, not {type(token).__name__}")
        if self.closed:
            stopped = f"stream {self.id} is stopped; emit() after stop()"
            raise StreamClosed(self.buffer.rejection or stopped)
        if not token:
            return
        if self._chars + len(token) > self._limit:
            raise StreamTooLong(
                f"stream {self.id}: {self._chars + len(token)} characters would exceed "
                f"TOKENRELAY_MAX_STREAM_CHARS={self._limit}; the token was not accepted"
            )
        self._chars += len(token)
        self._tail = token
        buffer = self.buffer
        buffer.items.append(token)
        if not buffer.dirty:
            buffer.dirty = True
            self._pusher.wake(buffer)

    def tool_message(self, text: str) -> None:
        """Mark a tool-call boundary with a notice (e.g. "🔍 searching the web…").

        On editing channels the notice joins the streamed message as its own paragraph; on
        channels that cannot edit, the text so far plus the notice is delivered as a message.
        """
        if not isinstance(text, str):
            raise TypeError(f"tool_message() takes a str, not {type(text).__name__}")
        if self.closed:
            stopped = f"stream {self.id} is stopped; tool_message() after stop()"
            raise StreamClosed(self.buffer.rejection or stopped)
        notice = text.strip()
        if self._chars and not self._tail.endswith("\n\n"):
            notice = ("\n" if self._tail.endswith("\n") else "\n\n") + notice
        if notice.strip():
            self.emit(notice + "\n\n")
        self.buffer.items.append(BOUNDARY)
        self.flush()

    def flush(self) -> None:
        """Push buffered tokens to Redis now. BackendUnavailable if Redis cannot be reached."""
        self._pusher.push([self.buffer])
        if self.buffer.rejection:
            raise self.buffer.rejection_type(self.buffer.rejection)

    def take(self, timeout: float = 10.0) -> str:
        """Seed-compatible: remove and return the text the chat does not show yet.

        The returned text will not be delivered by tokenrelay; the caller owns it.
        """
        self.flush()
        deadline = time.monotonic() + timeout
        while True:
            ok, value = self._store.take(self.id)
            if ok:
                tail = str(value)
                self._chars -= len(tail)
                if tail:
                    self._tail = ""  # what the text now ends with is not known here
                return tail
            if time.monotonic() >= deadline:
                busy = f"stream {self.id}: a worker kept the stream busy for {timeout} s"
                raise StopTimeout(busy)
            time.sleep(min(int(value), 50) / 1000.0)

    def stop(self, timeout: float = 30.0, wait: bool = True) -> StopResult | StopHandle:
        """Finish the stream: the workers deliver everything still unsent.

        Returns the StopResult (what the chat shows), or with ``wait=False`` a StopHandle at once.
        Calling stop() again returns the same result.
        """
        with self._stop_lock:
            if self._handle is None:
                self.buffer.stopped = True
                try:
                    self._pusher.push([self.buffer])
                except BackendUnavailable:
                    self.buffer.stopped = False  # nothing lost: stop() can be called again
                    raise
                self._pusher.discard(self.id)
                self._close(self.id)
                self._handle = StopHandle(self.id, self._store, self._waiter)
        if not wait:
            return self._handle
        return self._handle.result(timeout)


class StopHandle:
    """A stop in progress: ``result()`` waits for what the chat shows."""

    def __init__(self, stream_id: str, store: Store, waiter: ResultWaiter) -> None:
        self.stream_id = stream_id
        self._store = store
        self._waiter = waiter
        self._result: StopResult | None = None

    def done(self) -> bool:
        return self._result is not None or self._store.result(self.stream_id) is not None

    def result(self, timeout: float = 30.0) -> StopResult:
        """Wait up to ``timeout`` s for the final result; StopTimeout after that.

        The wait holds no Redis connection: the producer's one listener wakes it.
        """
        if self._result is None:
            self._result = self._read(self._waiter.wait(self.stream_id, timeout), timeout)
        return self._result

    async def aresult(self, timeout: float = 30.0) -> StopResult:
        """The asyncio twin of :meth:`result` (no thread per waiting stop)."""
        if self._result is None:
            raw = await self._waiter.await_result(self.stream_id, timeout)
            self._result = self._read(raw, timeout)
        return self._result

    def _read(self, raw: dict | None, timeout: float) -> StopResult:
        if raw is None:
            raise StopTimeout(
                f"stream {self.stream_id}: no final result within {timeout} s; "
                "the workers keep delivering it"
            )
        if raw.get("lost"):
            return StopResult.lost(self.stream_id)
        return StopResult.from_dict(raw)
