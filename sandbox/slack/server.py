"""The Slack Web API emulator: chat.postMessage / update / delete and native streams.

Answers as Slack does: HTTP 200 with ``{"ok": true, …}`` or ``{"ok": false, "error": "…"}``,
and HTTP 429 with ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}``. Enforced:
the bot token (``invalid_auth`` / ``not_authed``), conversation ids (``channel_not_found``),
membership (``not_in_channel`` after ``kick``), empty text (``no_text``), strict mrkdwn
escaping, ``max_chars`` (``msg_too_long``), postMessage about 1/s per channel, chat.update
and the stream methods Tier 3 per workspace (token), and native streams: a stream outside a
DM needs ``recipient_user_id`` + ``recipient_team_id``, ends when stopped, after
``stream_idle`` seconds without an append, or on ``expire_streams()``; then appends fail with
``message_not_in_streaming_state``. A message's ``ts`` is ``1700000000.<ledger id>``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from sandbox.slack.loopback import Answer, BaseKnobs, LoopbackEmulator, Request
from sandbox.slack.mrkdwn import MrkdwnError, visible_text
from sandbox.telegram.flood import TokenBucket
from sandbox.telegram.ledger import SandboxCall, SandboxMessage

__all__ = ["SlackEmulator", "SlackKnobs", "message_ts"]

_TOKEN = re.compile(r"^xox[abpe]-[A-Za-z0-9-]+$")
_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,30}$")
_TS = re.compile(r"^1700000000\.(\d{6})$")
#: markdown_text limit of one stream call
MAX_STREAM_CHARS = 12_000


@dataclass(frozen=True)
class SlackKnobs(BaseKnobs):
    max_chars: int = 40_000  #: characters of a message's text (Slack truncates above 40,000)
    post_rate: float = 1.0  #: chat.postMessage per second per channel
    post_burst: int = 3
    update_per_minute: float = 50.0  #: chat.update + stream calls per minute per workspace
    update_burst: int = 10
    stream_idle: float = 60.0  #: seconds without an append after which a stream ends


def message_ts(message_id: int) -> str:
    """The ``ts`` the emulator gives the ledger's message ``message_id``."""
    return f"1700000000.{message_id:06d}"


class _Refused(Exception):
    def __init__(self, error: str, retry_after: int | None = None) -> None:
        super().__init__(error)
        self.error, self.retry_after = error, retry_after


class SlackEmulator(LoopbackEmulator):
    """A Slack Web API on a loopback port; clients use ``api_base`` (``…/api``)."""

    knobs_class = SlackKnobs
    platform = "slack"

    def __init__(self, host: str = "127.0.0.1", **knobs: Any) -> None:
        super().__init__(host, **knobs)
        self._posts: dict[str, TokenBucket] = {}
        self._updates: dict[str, TokenBucket] = {}
        #: (chat, ledger id) -> monotonic time of the last stream activity, while streaming
        self._streams: dict[tuple[str, int], float] = {}
        self._kicked: set[str] = set()

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api"

    def tokenrelay_env(self, account: str = "default") -> dict[str, str]:
        """TOKENRELAY_* variables pointing the Slack client at this emulator, its limits
        kept a little under the emulator's."""
        prefix = "TOKENRELAY_SLACK_" + ("" if account == "default" else f"{account.upper()}_")
        return {
            prefix + "BOT_TOKEN": self.knobs.token or "xoxb-sandbox-token",
            prefix + "API_BASE": self.api_base,
            prefix + "UPDATE_PER_MINUTE": str(self.knobs.update_per_minute * 0.9),
            prefix + "POST_RATE": str(self.knobs.post_rate * 0.9),
        }

    def kick(self, chat_id: str) -> None:
        """The bot is removed from the conversation: writes answer ``not_in_channel``."""
        with self._cond:
            self._kicked.add(chat_id)

    def expire_streams(self, chat_id: str | None = None) -> int:
        """End every live stream (of one chat); returns how many ended."""
        with self._cond:
            ended = [k for k in self._streams if chat_id is None or k[0] == chat_id]
            for key in ended:
                del self._streams[key]
            self._cond.notify_all()
            return len(ended)

    def streaming(self, chat_id: str) -> list[int]:
        """Ledger ids of the chat's messages whose stream is live."""
        with self._cond:
            return sorted(i for c, i in self._streams if c == chat_id)

    def route(self, request: Request, call: SandboxCall) -> Answer:
        method = request.path.rsplit("/", 1)[-1]
        body = request.body
        chat = str(body.get("channel") or "") or None
        call = replace(call, method=method, chat_id=chat,
                       text_len=len(str(body.get("text") or body.get("markdown_text") or "")))
        handler = {
            "chat.postMessage": self._post, "chat.update": self._update,
            "chat.delete": self._delete, "chat.startStream": self._start,
            "chat.appendStream": self._append, "chat.stopStream": self._stop,
        }.get(method)
        try:
            self._authorise(request)
            if handler is None:
                raise _Refused("unknown_method")
            message = handler(request, chat or "")
        except _Refused as exc:
            status = 429 if exc.retry_after is not None else 200
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
            call = replace(call, status=status, error=exc.error, retry_after=exc.retry_after)
            return Answer(status, {"ok": False, "error": exc.error}, call, headers)
        ts = message_ts(message.message_id)
        call = replace(call, status=200, ok=True, message_id=message.message_id)
        return Answer(200, {"ok": True, "channel": chat, "ts": ts, "text": message.raw_text},
                      call)

    # -- methods -----------------------------------------------------------------------------

    def _post(self, req: Request, chat: str) -> SandboxMessage:
        self._open(chat)
        raw, text = self._text(req.body)
        self._take(self._posts, chat, self.knobs.post_rate, self.knobs.post_burst, req.now)
        return self._ledger.add_message(chat, raw, text, "mrkdwn", req.now)

    def _update(self, req: Request, chat: str) -> SandboxMessage:
        message = self._message(req.body, chat)
        raw, text = self._text(req.body)
        self._take_update(req)
        self._streams.pop((chat, message.message_id), None)
        self._ledger.edit(message, raw, text, "mrkdwn", req.now)
        return message

    def _delete(self, req: Request, chat: str) -> SandboxMessage:
        message = self._message(req.body, chat)
        self._streams.pop((chat, message.message_id), None)
        self._ledger.remove(message)
        return message

    def _start(self, req: Request, chat: str) -> SandboxMessage:
        self._open(chat)
        if not chat.startswith("D") and not (
            req.body.get("recipient_user_id") and req.body.get("recipient_team_id")
        ):
            raise _Refused("invalid_arguments")
        text = self._stream_text(req.body, required=True)
        self._take_update(req)
        message = self._ledger.add_message(chat, text, text, "markdown_text", req.now)
        self._streams[(chat, message.message_id)] = req.now
        return message

    def _append(self, req: Request, chat: str) -> SandboxMessage:
        message = self._live_stream(req, chat)
        text = self._stream_text(req.body, required=True)
        self._take_update(req)
        self._streams[(chat, message.message_id)] = req.now
        self._ledger.edit(message, message.raw_text + text, message.text + text,
                          "markdown_text", req.now)
        return message

    def _stop(self, req: Request, chat: str) -> SandboxMessage:
        message = self._live_stream(req, chat)
        text = self._stream_text(req.body, required=False)
        self._take_update(req)
        del self._streams[(chat, message.message_id)]
        if text:
            self._ledger.edit(message, message.raw_text + text, message.text + text,
                              "markdown_text", req.now)
        return message

    # -- checks ------------------------------------------------------------------------------

    def _authorise(self, req: Request) -> None:
        auth = req.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise _Refused("not_authed")
        token = auth.removeprefix("Bearer ")
        expected = self.knobs.token
        if not (_TOKEN.match(token) if expected is None else token == expected):
            raise _Refused("invalid_auth")

    def _open(self, chat: str) -> None:
        if not _CHANNEL.match(chat):
            raise _Refused("channel_not_found")
        if chat in self._kicked:
            raise _Refused("not_in_channel")

    def _message(self, body: dict[str, Any], chat: str) -> SandboxMessage:
        self._open(chat)
        match = _TS.match(str(body.get("ts") or ""))
        message = self._ledger.find(chat, int(match[1])) if match else None
        if message is None:
            raise _Refused("message_not_found")
        return message

    def _live_stream(self, req: Request, chat: str) -> SandboxMessage:
        message = self._message(req.body, chat)
        key = (chat, message.message_id)
        last = self._streams.get(key)
        if last is not None and req.now - last > self.knobs.stream_idle:
            del self._streams[key]
            last = None
        if last is None:
            raise _Refused("message_not_in_streaming_state")
        return message

    def _text(self, body: dict[str, Any]) -> tuple[str, str]:
        raw = body.get("text")
        if not isinstance(raw, str) or not raw.strip():
            raise _Refused("no_text")
        if len(raw) > self.knobs.max_chars:
            raise _Refused("msg_too_long")
        try:
            text = visible_text(raw)
        except MrkdwnError:
            raise _Refused("invalid_mrkdwn") from None
        if not text.strip():
            raise _Refused("no_text")
        return raw, text

    @staticmethod
    def _stream_text(body: dict[str, Any], required: bool) -> str:
        text = body.get("markdown_text")
        if text is None and not required:
            return ""
        if not isinstance(text, str) or not text:
            raise _Refused("no_text")
        if len(text) > MAX_STREAM_CHARS:
            raise _Refused("msg_too_long")
        return text

    def _take_update(self, req: Request) -> None:
        k = self.knobs
        token = req.headers.get("authorization", "")
        self._take(self._updates, token, k.update_per_minute / 60.0, k.update_burst, req.now)

    @staticmethod
    def _take(buckets: dict[str, TokenBucket], key: str, rate: float, burst: int,
              now: float) -> None:
        bucket = buckets.get(key)
        if bucket is None or bucket.rate != rate or bucket.burst != burst:
            bucket = buckets[key] = TokenBucket(rate, burst, now)
        wait = bucket.wait(now)
        if wait > 0:
            raise _Refused("ratelimited", max(1, math.ceil(wait)))
        bucket.take(now)
