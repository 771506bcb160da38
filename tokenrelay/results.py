"""StopResult: what the chat shows once a stream has stopped."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

#: how the final text reached the chat
How = Literal[
    "streamed", "edited_at_stop", "sent_at_stop", "empty", "failed", "incomplete", "lost"
]


@dataclass(frozen=True)
class StopResult:
    """The outcome of ``Stream.stop()``, read from the sent state the workers recorded.

    ``all_sent`` is True when the chat shows the whole text; ``message_ids`` are the chat
    messages that carry it, in order. ``how``: ``streamed`` (edits had already shown it all
    when the stop arrived), ``edited_at_stop`` (the stop task's final edit completed it),
    ``sent_at_stop`` (the stop task delivered unsent text as new messages: the channel cannot
    edit, or the user deleted a message), ``empty`` (no visible text), ``failed`` (a permanent
    error, see ``error``), ``incomplete`` (some text is not shown: the platform refused it, or
    the final-delivery deadline passed; see ``error``) or ``lost`` (Redis lost the stream's
    state, e.g. a restart without persistence: nothing is known about what the chat shows).
    """

    stream_id: str
    all_sent: bool
    message_ids: list[str]
    how: How
    channel: str = ""
    chat_id: str = ""
    text_chars: int = 0
    unsent_chars: int = 0
    sends: int = 0
    edits: int = 0
    retries: int = 0
    rate_limited: int = 0
    not_modified: int = 0
    plain_fallbacks: int = 0
    resent: int = 0
    #: sends whose answer was lost (the platform may show a copy; see README's guarantees)
    ambiguous_sends: int = 0
    #: messages a stale worker left that were deleted or adopted
    copies_removed: int = 0
    #: times another worker took the stream over from one that stopped answering
    takeovers: int = 0
    #: times the stream waited for a rate budget (a ticket in its queue)
    budget_waits: int = 0
    first_visible_ms: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def lost(cls, stream_id: str) -> StopResult:
        """The result of a stream whose state Redis no longer has."""
        return cls(
            stream_id, False, [], "lost",
            error="stream state lost: Redis no longer has this stream (restart without "
            "persistence, eviction, or its keys expired)",
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StopResult:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
