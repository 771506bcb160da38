"""StopResult: what the chat shows once a stream has stopped."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

#: how the final text reached the chat
How = Literal["streamed", "edited_at_stop", "sent_at_stop", "empty", "failed", "incomplete"]


@dataclass(frozen=True)
class StopResult:
    """The outcome of ``Stream.stop()``, read from the sent state the workers recorded.

    ``all_sent`` is True when the chat shows the whole text; ``message_ids`` are the chat
    messages that carry it, in order. ``how``: ``streamed`` (edits had already shown it all
    when the stop arrived), ``edited_at_stop`` (the stop task's final edit completed it),
    ``sent_at_stop`` (the stop task delivered unsent text as new messages: the channel cannot
    edit, or the user deleted a message), ``empty`` (no visible text), ``failed`` (a permanent
    error, see ``error``) or ``incomplete`` (gave up after the final-delivery deadline).
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
    first_visible_ms: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StopResult:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
