"""The sent state of a stream: which chat messages exist, what each shows, and counters.

Stored as one JSON document per stream (see ``workers.state``); this module only converts it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from workers.delivery import Segment

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
