"""TokenBuffer: one stream's tokens between ``emit()`` and Redis.

``emit()`` appends to an in-process deque; the pusher drains it into numbered chunks (split at
tool-call boundaries) that stay pending until Redis confirms them, so a chunk re-sent after a
lost answer is applied once. The buffer also keeps why Redis refused the stream, if it did.
"""

from __future__ import annotations

from collections import deque

from producers.errors import StreamClosed, StreamTooLong, TokenRelayError

#: marks a tool-call boundary in the token buffer
BOUNDARY = object()


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


class TokenBuffer:
    """The tokens of one stream not yet confirmed by Redis."""

    def __init__(self, stream_id: str) -> None:
        self.id = stream_id
        self.items: deque[object] = deque()
        #: chunks drained but not confirmed by Redis: (bytes, tool boundary, sequence number);
        #: re-sent until confirmed, applied once thanks to the number
        self.pending: list[tuple[bytes, bool, int]] = []
        self.seq = 0
        #: tokens arrived since the last drain (the pusher has been told)
        self.dirty = False
        #: any text reached Redis yet (the first tokens skip batching)
        self.pushed = False
        #: the stream was stopped by its agent (rejections after that are not news)
        self.stopped = False
        self.rejection: str | None = None
        self.rejection_type: type[TokenRelayError] = StreamClosed

    def drain(self) -> list[tuple[bytes, bool, int]]:
        """Move buffered tokens to the pending chunks (split at boundaries) and return them all."""
        self.dirty = False
        parts: list[str] = []
        for _ in range(len(self.items)):
            item = self.items.popleft()
            if item is BOUNDARY:
                self.seq += 1
                self.pending.append((_utf8(parts), True, self.seq))
                parts = []
            else:
                parts.append(item)  # type: ignore[arg-type]
        if parts:
            self.seq += 1
            self.pending.append((_utf8(parts), False, self.seq))
        return list(self.pending)

    def rejected(self, answer: str) -> None:
        """Redis refused a chunk: ``closed``, ``too_long`` or ``unknown`` (state lost)."""
        if self.stopped or self.rejection is not None:
            return  # stopped by us, or already refused: keep that reason
        if answer == "closed":
            self.rejection = (
                f"stream {self.id} was finalized by the workers (the watchdog saw no tokens and "
                "no heartbeat for its idle timeout, or it was stopped elsewhere)"
            )
        elif answer == "too_long":
            self.rejection = f"stream {self.id} exceeds its maximum length"
            self.rejection_type = StreamTooLong
        else:
            self.rejection = (
                f"stream {self.id}: stream state lost (Redis no longer has it: restart without "
                "persistence, eviction, or its keys expired)"
            )
