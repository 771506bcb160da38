"""What a chat platform can answer, as data: each platform client maps its wire errors to these
types at one point, and the core handles each type once. Messages never contain credentials.

Every error carries the call (``method``), the platform's own ``code`` and ``description``, so
a StopResult can say exactly what the platform said without anybody parsing text again.
"""

from __future__ import annotations


class ChannelError(Exception):
    """A chat platform refused or failed a call."""

    def __init__(
        self, message: str = "", *, method: str = "", code: int | str | None = None,
        description: str = "",
    ) -> None:
        super().__init__(message or description or type(self).__name__)
        #: the API method or route that failed (``sendMessage``, ``chat.update``, …)
        self.method = method
        #: the platform's error code (HTTP status, Telegram error_code, Slack error string, …)
        self.code = code
        #: the platform's own description, credentials masked
        self.description = description or message


class RateLimited(ChannelError):
    """The platform asked us to wait ``retry_after`` seconds (HTTP 429 and its kin).

    ``scope`` says which budget the platform named, when it did (``"global"`` for Discord's
    global limit); None when the answer does not say.
    """

    def __init__(
        self, retry_after: float, message: str = "rate limited", *, scope: str | None = None,
        **data: object,
    ) -> None:
        super().__init__(f"{message} (retry after {float(retry_after):g} s)", **data)  # type: ignore[arg-type]
        #: seconds
        self.retry_after = max(0.0, float(retry_after))
        self.scope = scope


class NotModified(ChannelError):
    """The edit would not change the message: the chat already shows this text (success)."""


class MessageGone(ChannelError):
    """The message to edit no longer exists (the user deleted it): send a new one."""


class ParseError(ChannelError):
    """The platform could not parse the markup: resend the same text as plain text."""


class TooLong(ChannelError):
    """The platform counted the text as longer than its limit."""


class Rejected(ChannelError):
    """The platform refused this one call for a reason that retrying will not fix, and that
    does not end the stream (e.g. nothing visible to send yet). The text is *not* shown."""


class PermanentFailure(ChannelError):
    """Nothing more can be delivered to this chat (bad token, bot blocked, chat not found, no
    rights to post, or a refusal the client does not know)."""


class TransientFailure(ChannelError):
    """Server errors, timeouts or dropped connections that outlasted the in-call retries."""


class Ambiguous(TransientFailure):
    """A call that creates something (a send) was sent but its answer was lost: the platform
    may have acted. Not retried inside the call; the core decides (and counts it)."""


class CallExpired(TransientFailure):
    """The call's deadline (the stream lease's remaining time) ran out before it could be
    made or retried: no request is in flight any more."""
