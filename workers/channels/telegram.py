"""Telegram Bot API: sendMessage / editMessageText, its limits, and its error shapes.

Limits follow Telegram's rules: 4096 characters counted in UTF-16 code units after entity
parsing; about 1 message/s per chat, 20/min in groups (negative chat ids), 30/s per bot, with
edits drawing on the same allowance. Every number is a TOKENRELAY_TELEGRAM_* setting.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from tokenrelay.accounts import credential
from tokenrelay.config import Settings
from tokenrelay.redact import redact, register_secret
from tokenrelay.specs.telegram import MAX_UNITS, TelegramSpec, is_group
from workers.channels.base import (
    NO_CALL,
    Budget,
    Call,
    Capabilities,
    ChannelError,
    Format,
    MessageGone,
    NotModified,
    OpKind,
    ParseError,
    PermanentFailure,
    RateLimited,
    Rejected,
    RenderedMarkdown,
    TooLong,
)
from workers.channels.http import Reply, Transport
from workers.channels.telegram_markdown import to_telegram_html, visible_text
from workers.planner.split import utf16_units

#: a bot token as BotFather issues it
TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")

#: calls one bot may make at once before the per-second global rate paces it
GLOBAL_BURST = 20
#: prefix of the message id of a segment still shown as a draft (``native=True``)
DRAFT = "draft:"

CAPABILITIES = Capabilities(
    can_edit=True, max_units=MAX_UNITS, units=utf16_units, can_delete=True, idempotent_send=False
)


class TelegramClient(RenderedMarkdown):
    """One bot account. Raises the error types of ``workers.channels.base``."""

    name = "telegram"
    render_markdown = staticmethod(to_telegram_html)
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
        #: private chats whose server refused drafts (an older Bot API): send + edit there
        self._no_drafts: set[str] = set()

    def __repr__(self) -> str:
        return f"TelegramClient(account={self.account!r}, api_base={self._base!r})"

    def budgets(
        self, chat_id: str, kind: OpKind = "send", message_id: str | None = None
    ) -> list[Budget]:
        scope = f"telegram:{self.account}"
        s = self.settings
        chat = (
            Budget(scope, f"chat:{chat_id}", s.telegram_group_rate_per_minute / 60.0, 2)
            if is_group(chat_id)
            else Budget(scope, f"chat:{chat_id}", s.telegram_chat_rate, 2)
        )
        return [chat, Budget(scope, "bot", s.telegram_global_rate, GLOBAL_BURST, adaptive=True)]

    def send(
        self, chat_id: str, text: str, fmt: Format, final: bool = False, call: Call = NO_CALL
    ) -> str:
        payload = self._payload(chat_id, text, fmt, final)
        if not final and self._drafts_allowed(chat_id, call):
            draft_id = draft_id_of(call.key)
            if self._draft(chat_id, draft_id, payload):
                return f"{DRAFT}{draft_id}"
        return self._send_real(payload)

    def _send_real(self, payload: dict[str, Any]) -> str:
        # the Bot API has no idempotency key: a send whose answer is lost is not retried
        result = self._call("sendMessage", payload, idempotent=False)
        return str(result["message_id"])

    def _drafts_allowed(self, chat_id: str, call: Call) -> bool:
        """Drafts stream natively into private chats (Bot API 9.3+), when the stream asked."""
        return call.native and chat_id.isdigit() and chat_id not in self._no_drafts

    def _draft(self, chat_id: str, draft_id: int, payload: dict[str, Any]) -> bool:
        """Show ``payload`` as the chat's draft; False when the server refuses drafts (then
        this chat streams with sendMessage + editMessageText from now on)."""
        reply = self.transport.post_json(
            self._url("sendMessageDraft"), {**payload, "draft_id": draft_id}
        )
        if reply.body.get("ok") is True:
            return True
        if not drafts_refused(reply):
            raise read_error("sendMessageDraft", reply)
        self._no_drafts.add(chat_id)
        return False

    def edit(
        self,
        chat_id: str,
        message_id: str,
        text: str,
        fmt: Format,
        final: bool = False,
        call: Call = NO_CALL,
    ) -> str | None:
        payload = self._payload(chat_id, text, fmt, final)
        if message_id.startswith(DRAFT):
            streaming = not final and self._drafts_allowed(chat_id, call)
            if streaming and self._draft(chat_id, int(message_id[len(DRAFT) :]), payload):
                return None
            # the draft becomes a real message with the whole text (at stop, at a split, or
            # when drafts were refused mid-stream): the core records the new id
            return self._send_real(payload)
        payload["message_id"] = int(message_id)
        self._call("editMessageText", payload)
        return None

    def delete(self, chat_id: str, message_id: str) -> None:
        if message_id.startswith(DRAFT):
            return  # a draft is ephemeral: it goes by itself
        self._call("deleteMessage", {"chat_id": chat_id, "message_id": int(message_id)})

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

    def _url(self, method: str) -> str:
        return f"{self._base}/bot{self._token}/{method}"

    def _call(
        self, method: str, payload: dict[str, Any], idempotent: bool = True
    ) -> dict[str, Any]:
        reply = self.transport.post_json(self._url(method), payload, idempotent=idempotent)
        if reply.body.get("ok") is True:
            result = reply.body.get("result")
            return result if isinstance(result, dict) else {}
        raise read_error(method, reply)


def draft_id_of(key: str) -> int:
    """A non-zero draft id from the core's per-segment key (the same on every retry)."""
    seed = key or uuid.uuid4().hex
    return 1 + int(hashlib.sha256(seed.encode()).hexdigest()[:12], 16)


def drafts_refused(reply: Reply) -> bool:
    """The server does not know sendMessageDraft (a Bot API older than 9.3, or a proxy)."""
    desc = str(reply.body.get("description") or "").lower()
    return reply.status == 404 or ("method" in desc and "not found" in desc)


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


def build(spec: TelegramSpec, account: str) -> TelegramClient:
    """A client for ``account``, from its settings (``spec.setting``)."""
    return TelegramClient(
        credential(spec.name, account), account, spec.settings, Transport(
            spec.settings.http_timeout
        )
    )


