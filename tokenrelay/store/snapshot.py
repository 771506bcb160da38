"""What a pass reads and what the store's scripts answer, as plain data (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

from tokenrelay.store.sent import SentState


@dataclass(frozen=True)
class Window:
    """The part of the stream's text the planner may look at: ``text`` starts at offset ``base``."""

    text: str
    base: int = 0

    @property
    def end(self) -> int:
        return self.base + len(self.text)

    def slice(self, start: int, end: int) -> str:
        if start < self.base:
            raise ValueError(f"offset {start} is before the window at {self.base}")
        return self.text[start - self.base : end - self.base]


@dataclass(frozen=True)
class Snapshot:
    """What a flush reads in its one opening round trip."""

    stream_id: str
    meta: dict[str, str]
    sent: SentState
    window: Window
    #: byte offset of window.base in the stream's text
    base_b: int
    #: byte length of the stream's text when read
    text_b: int
    marks_b: tuple[int, ...]
    flushed_b: int
    #: the server's clock when read (ms): every time the flush compares is on this clock
    now_ms: int = 0
    #: the previous holder never released its lease (killed, or its lease ran out mid-call)
    taken_over: bool = False
    #: "segment:message id" entries a stale worker left (messages it created, unrecorded)
    orphans: tuple[str, ...] = ()
    #: the budget ticket this stream holds (server ms), 0 for none
    ticket_ms: int = 0
    #: the segment a send was going out for when the last holder stopped (None: no send)
    sending: int | None = None

    @property
    def status(self) -> str:
        return self.meta.get("status", "")

    def byte_offset(self, char_offset: int) -> int:
        """Byte offset in the stream text of an absolute character offset inside the window."""
        return self.base_b + len(self.window.slice(self.window.base, char_offset).encode())

    def char_offset(self, byte_offset: int) -> int:
        """Character offset of a byte offset inside the window (e.g. a tool boundary)."""
        raw = self.window.text.encode()[: max(0, byte_offset - self.base_b)]
        return self.window.base + len(raw.decode("utf-8", "ignore"))


@dataclass(frozen=True)
class Begun:
    """What begin.lua answered: ``snapshot`` when the lease is ours, else why not."""

    status: str
    snapshot: Snapshot | None = None
    #: 'early': when the stream is due; 'busy': when the holder's lease runs out (server ms)
    due_ms: int = 0


@dataclass(frozen=True)
class Ended:
    """What end.lua answered: fenced, or the next due time (server ms; -1 for none)."""

    fenced: bool
    version: int = 0
    due_ms: int = -1


@dataclass(frozen=True)
class Claims:
    """Streams claimed from one schedule: (id, claim score) pairs, the server time and the
    next due time still in the schedule (-1 when empty)."""

    now_ms: int
    next_due_ms: int
    items: list[tuple[str, int]]


@dataclass(frozen=True)
class Offsets:
    """Where the stream's text stands for the planner, in bytes (Redis) and characters."""

    flushed_b: int
    delivered_b: int
    read_b: int
    read_c: int

    def args(self) -> list[int]:
        return [self.flushed_b, self.delivered_b, self.read_b, self.read_c]
