"""What the core knows about a chat platform: the client protocol and its capabilities.

The error types live in ``workers.channels.errors`` (re-exported here); each platform module
maps its wire errors to them once, and the core handles each type once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from tokenrelay.specs.base import Format
from workers.channels.errors import (
    Ambiguous,
    CallExpired,
    ChannelError,
    MessageGone,
    NotModified,
    ParseError,
    PermanentFailure,
    RateLimited,
    Rejected,
    TooLong,
    TransientFailure,
)
from workers.channels.telegram_markdown import open_fence
from workers.planner.split import UnitCounter, utf16_units

__all__ = [
    "NO_CALL",
    "Ambiguous",
    "Budget",
    "Call",
    "CallExpired",
    "Capabilities",
    "ChannelClient",
    "ChannelError",
    "Format",
    "MessageGone",
    "NotModified",
    "ParseError",
    "PermanentFailure",
    "RateLimited",
    "Rejected",
    "RenderedMarkdown",
    "TooLong",
    "TransientFailure",
    "WholeMessages",
]

@dataclass(frozen=True)
class Budget:
    """One rate budget a call draws from: ``per_second`` calls, bursts of ``burst``.

    Every budget of one call shares its ``scope`` (the platform account: one Redis Cluster
    slot). ``adaptive``: 429s that do not name a budget slow this one down (AIMD), so a bot
    whose real limit is lower than configured stops drawing 429s.
    """

    scope: str
    name: str
    per_second: float
    burst: int = 1
    adaptive: bool = False


@dataclass(frozen=True)
class Capabilities:
    """What the planner and the flusher need to know about a channel."""

    can_edit: bool = True
    #: longest text of one message, in the channel's own units
    max_units: int = 4096
    units: UnitCounter = utf16_units
    #: the platform can delete a message (used to remove a copy left by a stale worker)
    can_delete: bool = False
    #: sends carry an idempotency key the platform honours (a retried send never makes a copy)
    idempotent_send: bool = False


@dataclass(frozen=True)
class Call:
    """What the core tells a client about one send or edit besides the text.

    ``key`` is stable for one logical operation (the same on every retry of it, also by another
    worker after a take-over), at most 25 characters of [A-Za-z0-9]: clients pass it as the
    platform's idempotency key (Discord ``nonce``, Matrix transaction id). ``previous`` is the
    text the message showed before this edit as the core last recorded it ("" for a send), so
    a native stream can append only the new part. ``native``: the producer asked for the
    platform's native streaming (Telegram drafts, Slack chat.startStream) where it is allowed;
    ``thread``: the thread to reply in (Slack ``thread_ts``), as the producer gave it.
    """

    key: str = ""
    previous: str = ""
    native: bool = False
    thread: str | None = None


#: what one planned call does to the chat
OpKind = Literal["send", "edit", "delete"]

#: the default of ``call=``: no idempotency key, no previous text
NO_CALL = Call()


class ChannelClient(Protocol):
    """One account on one platform: sends and edits messages, raising the errors of
    ``workers.channels.errors``. Every HTTP request goes through ``workers.channels.http``
    (its deadline comes from the stream's lease)."""

    name: str
    capabilities: Capabilities

    def budgets(
        self, chat_id: str, kind: OpKind = "send", message_id: str | None = None
    ) -> list[Budget]:
        """The rate budgets one call of ``kind`` in this chat draws from (all of one scope).
        ``message_id``: the message an edit or delete touches, so a platform can put the
        methods it scopes apart (a native stream's appends, say) on budgets of their own."""
        ...

    def send(
        self, chat_id: str, text: str, fmt: Format, final: bool = False, call: Call = NO_CALL
    ) -> str:
        """Post ``text`` as a new message; returns the message id. ``final``: this message's
        text will not grow any more (render trailing markup as written)."""
        ...

    def edit(
        self,
        chat_id: str,
        message_id: str,
        text: str,
        fmt: Format,
        final: bool = False,
        call: Call = NO_CALL,
    ) -> str | None:
        """Replace the whole text of a message. Returns None, or the id of the message that
        now carries the text when the platform moved it (a draft became a real message)."""
        ...

    def delete(self, chat_id: str, message_id: str) -> None:
        """Remove a message (only called when ``capabilities.can_delete``)."""
        ...

    def settles_differently(self, text: str, fmt: Format) -> bool:
        """Whether ``text`` renders differently once final (e.g. a trailing ``*`` that the
        growing rendering held back); pure, no I/O."""
        ...

    def continuation(self, previous: str, fmt: Format) -> str:
        """Invisible markup the next message needs when a split ended ``previous`` inside a
        construct (Telegram Markdown: the open code fence's opening line), else ""."""
        ...


class WholeMessages:
    """The ChannelClient methods of a channel whose messages never change once sent (log
    lines, webhooks): the core delivers whole messages, so edits and deletions are refused."""

    name: str

    def edit(
        self,
        chat_id: str,
        message_id: str,
        text: str,
        fmt: Format,
        final: bool = False,
        call: Call = NO_CALL,
    ) -> None:
        raise Rejected(f"{self.name} messages cannot be edited")

    def delete(self, chat_id: str, message_id: str) -> None:
        raise Rejected(f"{self.name} messages cannot be deleted")

    def settles_differently(self, text: str, fmt: Format) -> bool:
        return False

    def continuation(self, previous: str, fmt: Format) -> str:
        return ""


class RenderedMarkdown:
    """``settles_differently`` and ``continuation`` of a channel that renders Markdown with
    ``render_markdown(text, final=…)``: a split inside a code fence reopens it."""

    @staticmethod
    def render_markdown(text: str, final: bool = False) -> str:
        raise NotImplementedError

    def settles_differently(self, text: str, fmt: Format) -> bool:
        return fmt == "markdown" and self.render_markdown(text) != self.render_markdown(
            text, final=True
        )

    def continuation(self, previous: str, fmt: Format) -> str:
        return open_fence(previous) if fmt == "markdown" else ""
