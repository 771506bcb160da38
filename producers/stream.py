"""Stream: what an agent holds while it writes one reply."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from producers.errors import (
    BackendUnavailable,
    StopTimeout,
    StreamClosed,
    StreamTooLong,
    TokenRelayError,
)
from tokenrelay.results import StopResult

if TYPE_CHECKING:
    from producers.producer import StreamProducer

#: marks a tool-call boundary in the token buffer
_BOUNDARY = object()


def _utf8(parts: list[str]) -> bytes:
    """Join tokens as UTF-8; lone surrogates (broken decoding upstream) become U+FFFD, token by
    token, so the text never depends on which tokens went out in one batch (runs in the
    pusher thread, not in emit())."""
    return b"".join(_encode(p) for p in parts)


def _encode(token: str) -> bytes:
    try:
        return token.encode("utf-8")
    except UnicodeEncodeError:
        # a pair of surrogates inside the token is one character; a lone one becomes U+FFFD
        fixed = token.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return fixed.encode("utf-8")


class Stream:
    """One reply being streamed to one chat. ``emit()`` never waits on the network."""

    def __init__(
        self, producer: StreamProducer, stream_id: str, channel: str, chat_id: str
    ) -> None:
        self.producer = producer
        self.id = stream_id
        self.channel = channel
        self.chat_id = chat_id
        self._buf: deque[object] = deque()
        #: chunks drained but not confirmed by Redis: (bytes, tool boundary, sequence number);
        #: re-sent until confirmed, applied once thanks to the number
        self._pending: list[tuple[bytes, bool, int]] = []
        self._seq = 0
        self._dirty = False
        self._pushed = False  # any text reached Redis yet (the first tokens skip batching)
        self._closed = False
        self._chars = 0
        self._tail = ""
        self._limit = producer.settings.max_stream_chars
        self._rejection: str | None = None
        self._rejection_type: type[TokenRelayError] = StreamClosed
        self._stop_lock = threading.Lock()
        self._handle: StopHandle | None = None

    def __repr__(self) -> str:
        return f"Stream(id={self.id!r}, channel={self.channel!r}, chat_id={self.chat_id!r})"

    @property
    def closed(self) -> bool:
        return self._closed

    def emit(self, token: str) -> None:
        """Append ``token`` to the reply. Cheap: an in-memory append; a thread pushes batches."""
        if not isinstance(token, str):
            raise TypeError(f"emit() takes str tokens, not {type(token).__name__}")
        if self._closed:
            stopped = f"stream {self.id} is stopped; emit() after stop()"
            raise StreamClosed(self._rejection or stopped)
        if not token:
            return
        if self._chars + len(token) > self._limit:
            raise StreamTooLong(
                f"stream {self.id}: {self._chars + len(token)} characters would exceed "
                f"TOKENRELAY_MAX_STREAM_CHARS={self._limit}; the token was not accepted"
            )
        self._chars += len(token)
        self._tail = token
        self._buf.append(token)
        if not self._dirty:
            self._dirty = True
            self.producer._pusher.wake(self)

    def tool_message(self, text: str) -> None:
        """Mark a tool-call boundary with a notice (e.g. "🔍 searching the web…").

        On editing channels the notice joins the streamed message as its own paragraph; on
        channels that cannot edit, the text so far plus the notice is delivered as a message.
        """
        if not isinstance(text, str):
            raise TypeError(f"tool_message() takes a str, not {type(text).__name__}")
        if self._closed:
            stopped = f"stream {self.id} is stopped; tool_message() after stop()"
            raise StreamClosed(self._rejection or stopped)
        notice = text.strip()
        if self._chars and not self._tail.endswith("\n\n"):
            notice = ("\n" if self._tail.endswith("\n") else "\n\n") + notice
        if notice.strip():
            self.emit(notice + "\n\n")
        self._buf.append(_BOUNDARY)
        self.flush()

    def flush(self) -> None:
        """Push buffered tokens to Redis now. BackendUnavailable if Redis cannot be reached."""
        self.producer._pusher.push([self])
        if self._rejection:
            raise self._rejection_type(self._rejection)

    def take(self, timeout: float = 10.0) -> str:
        """Seed-compatible: remove and return the text the chat does not show yet.

        The returned text will not be delivered by tokenrelay; the caller owns it.
        """
        self.flush()
        deadline = time.monotonic() + timeout
        while True:
            ok, value = self.producer.store.take(self.id)
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
                self._closed = True
                try:
                    self.producer._pusher.push([self])
                except BackendUnavailable:
                    self._closed = False  # nothing lost: stop() can be called again
                    raise
                self.producer._pusher.discard(self)
                self.producer._stop(self.id)
                self._handle = StopHandle(self.producer, self.id)
        if not wait:
            return self._handle
        return self._handle.result(timeout)

    # used by the pusher ----------------------------------------------------------------------
    def _drain(self) -> list[tuple[bytes, bool]]:
        """Move buffered tokens to the pending chunks (split at boundaries) and return them all."""
        self._dirty = False
        parts: list[str] = []
        for _ in range(len(self._buf)):
            item = self._buf.popleft()
            if item is _BOUNDARY:
                self._seq += 1
                self._pending.append((_utf8(parts), True, self._seq))
                parts = []
            else:
                parts.append(item)  # type: ignore[arg-type]
        if parts:
            self._seq += 1
            self._pending.append((_utf8(parts), False, self._seq))
        return list(self._pending)

    def _rejected(self, answer: str) -> None:
        if self._handle is not None or self._rejection is not None:
            return  # stopped by us, or already refused: keep that reason
        if answer == "closed":
            self._rejection = (
                f"stream {self.id} was finalized by the workers (the watchdog saw no tokens and "
                "no heartbeat for its idle timeout, or it was stopped elsewhere)"
            )
        elif answer == "too_long":
            self._rejection = f"stream {self.id} exceeds its maximum length"
            self._rejection_type = StreamTooLong
        else:
            self._rejection = (
                f"stream {self.id}: stream state lost (Redis no longer has it: restart without "
                "persistence, eviction, or its keys expired)"
            )
        self._closed = True


class StopHandle:
    """A stop in progress: ``result()`` waits for what the chat shows."""

    def __init__(self, producer: StreamProducer, stream_id: str) -> None:
        self.producer = producer
        self.stream_id = stream_id
        self._result: StopResult | None = None

    def done(self) -> bool:
        return self._result is not None or self.producer.store.result(self.stream_id) is not None

    def result(self, timeout: float = 30.0) -> StopResult:
        """Wait up to ``timeout`` s for the final result; StopTimeout after that.

        The wait holds no Redis connection: the producer's one listener wakes it.
        """
        if self._result is None:
            self._result = self._read(self.producer._waiter.wait(self.stream_id, timeout), timeout)
        return self._result

    async def aresult(self, timeout: float = 30.0) -> StopResult:
        """The asyncio twin of :meth:`result` (no thread per waiting stop)."""
        if self._result is None:
            raw = await self.producer._waiter.await_result(self.stream_id, timeout)
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
