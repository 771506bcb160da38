"""Telegram Bot API: sendMessage / editMessageText, its limits, and its error shapes.

Limits follow Telegram's rules: 4096 characters counted in UTF-16 code units after entity
parsing; about 1 message/s per chat, 20/min in groups (negative chat ids), 30/s per bot, with
edits drawing on the same allowance. Every number is a TOKENRELAY_TELEGRAM_* setting.
"""

from __future__ import annotations

import re
from typing import Any

from tokenrelay.config import Settings, credential
from workers.channels.base import (
    NO_CALL,
    Budget,
    Call,
    Capabilities,
    ChannelError,
    Format,
    MessageGone,
    NotModified,
    ParseError,
    PermanentFailure,
    RateLimited,
    Rejected,
    SpecBase,
    TooLong,
    chat_id_text,
)
from workers.channels.http import Reply, Transport
from workers.channels.telegram_markdown import open_fence, to_telegram_html, visible_text
from workers.redact import redact, register_secret
from workers.split import utf16_units

#: Telegram's limit for one message's text, in UTF-16 code units after entity parsing
MAX_UNITS = 4096
#: a chat id: a (possibly negative) integer, or a public @channelusername
CHAT_ID = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$")
#: a bot token as BotFather issues it
TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")

#: calls one bot may make at once before the per-second global rate paces it
GLOBAL_BURST = 20

CAPABILITIES = Capabilities(
    can_edit=True, max_units=MAX_UNITS, units=utf16_units, can_delete=True, idempotent_send=False
)


def is_group(chat_id: str) -> bool:
    """Group and channel chats have negative ids (or are addressed by @username)."""
    return chat_id.startswith(("-", "@"))


class TelegramSpec(SpecBase):
    """Telegram as the producer sees it (no credentials)."""

    name = "telegram"

    def normalize_chat_id(self, chat_id: object) -> str:
        text = chat_id_text(self.name, chat_id)
        if not CHAT_ID.match(text):
            raise ValueError(f"invalid telegram chat_id {chat_id!r}: an integer or @channelname")
        return text

    def interval_for(self, chat_id: str, default: float) -> float:
        if is_group(chat_id):
            return max(default, self.settings.telegram_group_interval)
        return default

    def build(self, account: str) -> TelegramClient:
        return TelegramClient(
            credential(self.name, account), account, self.settings, Transport(
                self.settings.http_timeout
            )
        )


class TelegramClient:
    """One bot account. Raises the error types of ``workers.channels.base``."""

    name = "telegram"
    capabilities = CAPABILITIES

    def __init__(self, token: str, account: str, settings: Settings, transport: Transport) -> None:
        if not TOKEN.match(token):
            raise PermanentFailure(f"telegram account {account!r}: malformed bot token")
        register_secret(token)
        self._token = token
        self.account = account
        self.settings = settings
        self.transport = transport
        self._base = settings.telegram_api_base

    def __repr__(self) -> str:
        return f"TelegramClient(account={self.account!r}, api_base={self._base!r})"

    def budgets(self, chat_id: str) -> list[Budget]:
        scope = f"telegram:{self.account}"
        s = self.settings
        chat = (
            Budget(scope, f"chat:{chat_id}", s.telegram_group_rate_per_minute / 60.0, 2)
            if is_group(chat_id)
            else Budget(scope, f"chat:{chat_id}", s.telegram_chat_rate, 2)
        )
        return [chat, Budget(scope, "bot", s.telegram_global_rate, GLOBAL_BURST)]

    def send(
        self, chat_id: str, text: str, fmt: Format, final: bool = False, call: Call = NO_CALL
    ) -> str:
        # the Bot API has no idempotency key: a send whose answer is lost is not retried
        payload = self._payload(chat_id, text, fmt, final)
        result = self._call("sendMessage", payload, idempotent=False)
        return str(result["message_id"])

    def edit(
        self,
        chat_id: str,
        message_id: str,
        text: str,
        fmt: Format,
        final: bool = False,
        call: Call = NO_CALL,
    ) -> None:
        payload = self._payload(chat_id, text, fmt, final)
        payload["message_id"] = int(message_id)
        self._call("editMessageText", payload)

    def delete(self, chat_id: str, message_id: str) -> None:
        self._call("deleteMessage", {"chat_id": chat_id, "message_id": int(message_id)})

    def settles_differently(self, text: str, fmt: Format) -> bool:
        return fmt == "markdown" and to_telegram_html(text) != to_telegram_html(text, final=True)

    def continuation(self, previous: str, fmt: Format) -> str:
        return open_fence(previous) if fmt == "markdown" else ""

    @staticmethod
    def _payload(chat_id: str, text: str, fmt: Format, final: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {"chat_id": chat_id, "text": text}
        if fmt == "markdown":
            payload["text"] = to_telegram_html(text, final=final)
            payload["parse_mode"] = "HTML"
            if not visible_text(payload["text"]).strip():
                # e.g. a lone "**" so far: nothing to show yet, and Telegram would refuse it
                raise Rejected("nothing visible to send yet")
        elif fmt == "html":
            payload["parse_mode"] = "HTML"
        return payload

    def _call(
        self, method: str, payload: dict[str, Any], idempotent: bool = True
    ) -> dict[str, Any]:
        url = f"{self._base}/bot{self._token}/{method}"
        reply = self.transport.post_json(url, payload, idempotent=idempotent)
        if reply.body.get("ok") is True:
            result = reply.body.get("result")
            return result if isinstance(result, dict) else {}
        raise read_error(method, reply)


def read_error(method: str, reply: Reply) -> ChannelError:
    """Map a Telegram error reply to the core's error types."""
    body = reply.body
    code = int(body.get("error_code") or reply.status)
    desc = redact(str(body.get("description") or f"HTTP {reply.status}"))
    lowered = desc.lower()
    where = f"telegram {method}: {desc}"
    if code == 429:
        params = body.get("parameters") or {}
        retry_after = params.get("retry_after") or reply.headers.get("Retry-After") or 1
        return RateLimited(float(retry_after), f"telegram {method}: {desc}")
    if code in (401, 403, 404) or "chat not found" in lowered:
        return PermanentFailure(where)
    if "message is not modified" in lowered:
        return NotModified(where)
    if "message to edit not found" in lowered or "message can't be edited" in lowered:
        return MessageGone(where)
    if "can't parse entities" in lowered:
        return ParseError(where)
    if "message is too long" in lowered:
        return TooLong(where)
    return Rejected(where)
