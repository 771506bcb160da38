"""What the core knows about a chat platform: the client protocol, capabilities and error types.

Each platform module maps its wire errors to these types once; the core handles each type once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from tokenrelay.config import Settings
from workers.split import UnitCounter, utf16_units

#: how a segment's text is formatted: plain, Markdown rendered for the platform, or the
#: platform's own markup passed through as written
Format = Literal["text", "markdown", "html"]
FORMATS: tuple[str, ...] = ("text", "markdown", "html")


def chat_id_text(channel: str, chat_id: object) -> str:
    """A chat id given as int or str, as a stripped string; ValueError for anything else."""
    if isinstance(chat_id, bool) or not isinstance(chat_id, (int, str)):
        raise ValueError(f"{channel} chat_id must be an int or str, not {type(chat_id).__name__}")
    return str(chat_id).strip()


class ChannelError(Exception):
    """A chat platform refused or failed a call. Messages never contain credentials."""


class RateLimited(ChannelError):
    """The platform asked us to wait ``retry_after`` seconds (HTTP 429)."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(f"{message} (retry after {retry_after:g} s)")
        self.retry_after = max(0.0, float(retry_after))


class NotModified(ChannelError):
    """The edit would not change the message: the chat already shows this text (success)."""


class MessageGone(ChannelError):
    """The message to edit no longer exists (the user deleted it): send a new one."""


class ParseError(ChannelError):
    """The platform could not parse the markup: resend the same text as plain text."""


class TooLong(ChannelError):
    """The platform counted the text as longer than its limit."""


class Rejected(ChannelError):
    """The platform refused this one call for a reason that retrying will not fix."""


class PermanentFailure(ChannelError):
    """Nothing more can be delivered to this chat (bad token, bot blocked, chat not found)."""


class TransientFailure(ChannelError):
    """Server errors, timeouts or dropped connections that outlasted the retry policy."""


@dataclass(frozen=True)
class Budget:
    """One rate budget a call draws from: ``per_second`` calls, bursts of ``burst``."""

    scope: str
    name: str
    per_second: float
    burst: int = 1


@dataclass(frozen=True)
class Capabilities:
    """What the planner and the flusher need to know about a channel."""

    can_edit: bool = True
    #: longest text of one message, in the channel's own units
    max_units: int = 4096
    units: UnitCounter = utf16_units


class ChannelClient(Protocol):
    """One account on one platform: sends and edits messages, raising the errors above."""

    name: str
    capabilities: Capabilities

    def budgets(self, chat_id: str) -> list[Budget]:
        """The rate budgets one send or edit in this chat draws from."""
        ...

    def send(self, chat_id: str, text: str, fmt: Format, final: bool = False) -> str:
        """Post ``text`` as a new message; returns the message id. ``final``: this message's
        text will not grow any more (render trailing markup as written)."""
        ...

    def edit(
        self, chat_id: str, message_id: str, text: str, fmt: Format, final: bool = False
    ) -> None:
        """Replace the whole text of a message."""
        ...

    def settles_differently(self, text: str, fmt: Format) -> bool:
        """Whether ``text`` renders differently once final (e.g. a trailing ``*`` that the
        growing rendering held back); pure, no I/O."""
        ...

    def continuation(self, previous: str, fmt: Format) -> str:
        """Invisible markup the next message needs when a split ended ``previous`` inside a
        construct (Telegram Markdown: the open code fence's opening line), else ""."""
        ...


class SpecBase:
    """Shared plumbing of the platform specs: settings in, the default edit interval."""

    name = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def interval_for(self, chat_id: str, default: float) -> float:
        """Seconds between edits of one stream in this chat (platforms may slow some chats)."""
        return default


class ChannelSpec(Protocol):
    """A platform as the producer sees it: no credentials, no I/O."""

    name: str

    def normalize_chat_id(self, chat_id: object) -> str:
        """The chat id as a string, or ValueError with a clear message."""
        ...

    def interval_for(self, chat_id: str, default: float) -> float:
        """Seconds between edits of one stream in this chat."""
        ...

    def build(self, account: str) -> ChannelClient:
        """A client for ``account``, reading its credential from the environment."""
        ...
