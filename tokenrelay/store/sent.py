"""The sent state of a stream: which chat messages exist, what each shows, and counters.

Stored as one JSON document per stream (see ``tokenrelay.store.keys``); this module only
converts it. A *segment* is one chat message's slice of the stream's text (the planner,
``workers.planner.delivery``, decides them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Segment:
    """One chat message's slice of the text, and what the chat shows of it."""

    message_id: str | None
    start: int
    #: end of a closed segment; None while this is the open (last) segment
    cut: int | None
    #: the chat shows ``text[start:shown]`` (stripped)
    shown: int
    #: the channel refused this segment's formatting once; keep sending it as plain text
    plain: bool = False
    #: markup that must precede this segment's text because the cut fell inside a construct
    #: (e.g. a code fence opened in the previous message); invisible, chosen by the channel
    lead: str = ""
    #: the chat shows this segment rendered as finished text (nothing held back for more)
    sealed: bool = False

    def target(self, text_end: int) -> int:
        """Where this segment's text ends now."""
        return text_end if self.cut is None else self.cut

    def to_json(self) -> list[object]:
        return [
            self.message_id, self.start, self.cut, self.shown, int(self.plain), self.lead,
            int(self.sealed),
        ]

    @classmethod
    def from_json(cls, raw: Sequence[object]) -> Segment:
        mid, start, cut, shown, plain, *rest = raw
        return cls(
            None if mid is None else str(mid),
            int(start),  # type: ignore[call-overload]
            None if cut is None else int(cut),  # type: ignore[call-overload]
            int(shown),  # type: ignore[call-overload]
            bool(plain),
            str(rest[0]) if rest else "",
            bool(rest[1]) if len(rest) > 1 else False,
        )


#: counters kept per stream, reported in StopResult
COUNTERS = (
    "sends", "edits", "retries", "rate_limited", "not_modified", "plain_fallbacks", "resent",
    "ambiguous_sends", "copies_removed", "takeovers", "budget_waits",
)


@dataclass(frozen=True)
class SentState:
    """What the chat shows of one stream, as last committed by a worker."""

    version: int = 0
    segments: tuple[Segment, ...] = ()
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    #: a permanent failure (blocked bot, bad token): the stream delivers nothing more
    failure: str | None = None
    #: ms from the stream's start to the first message appearing in the chat
    first_visible_ms: int | None = None
    #: True once the stop task had to deliver something (edit or new message)
    stop_ops: int = 0
    whole_at_stop: int = 0
    #: server ms until which an older edit may still land (a call whose answer was lost, or a
    #: holder that lost the stream mid-call): the final text is shown again after that
    doubt_ms: int = 0
    #: server ms until which interim edits wait: an edit of ours timed out and may still land,
    #: so a newer edit now could be overwritten by it (the chat would move backwards)
    hold_ms: int = 0
    #: the last refusal that left text unshown (the platform's own words), for StopResult
    last_error: str | None = None

    def bump(self, counter: str, by: int = 1) -> SentState:
        counts = dict(self.counts)
        counts[counter] = counts.get(counter, 0) + by
        return replace(self, counts=counts)

    def to_json(self) -> str:
        return json.dumps(
            {
                "segments": [s.to_json() for s in self.segments],
                "counts": self.counts,
                "failure": self.failure,
                "first_visible_ms": self.first_visible_ms,
                "stop_ops": self.stop_ops,
                "whole_at_stop": self.whole_at_stop,
                "doubt_ms": self.doubt_ms,
                "hold_ms": self.hold_ms,
                "last_error": self.last_error,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, version: int, raw: str | None) -> SentState:
        if not raw:
            return cls(version=version)
        doc = json.loads(raw)
        counts = dict.fromkeys(COUNTERS, 0)
        counts.update(doc.get("counts", {}))
        return cls(
            version=version,
            segments=tuple(Segment.from_json(s) for s in doc.get("segments", [])),
            counts=counts,
            failure=doc.get("failure"),
            first_visible_ms=doc.get("first_visible_ms"),
            stop_ops=int(doc.get("stop_ops", 0)),
            whole_at_stop=int(doc.get("whole_at_stop", 0)),
            doubt_ms=int(doc.get("doubt_ms", 0)),
            hold_ms=int(doc.get("hold_ms", 0)),
            last_error=doc.get("last_error"),
        )
