"""Matrix client-server API: ``m.room.message`` events, edited with ``m.replace`` relations.

Every event is a ``PUT …/send/m.room.message/{txnId}``; the txn id is derived from the call's
stable key and the operation (plus, for edits, a hash of the content), so a retried PUT (after
a lost answer, or by another worker) returns the event already created instead of making a
second one; a send that finds an earlier attempt's event edits it to the current text. Text is
sent as HTML (``org.matrix.custom.html``, rendered from Markdown by the Telegram renderer,
whose tags Matrix clients all know) with its visible text as the plain ``body``.

Per-account settings (``tokenrelay.accounts.lookup``): ``HOMESERVER``, ``ACCESS_TOKEN``,
``MAX_CHARS`` (default 32,000), ``ROOM_RATE`` (events/s per room, default 1) and
``ACCOUNT_RATE`` (events/s per account, default 10).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any
from urllib.parse import quote

from tokenrelay.config import ConfigError
from tokenrelay.redact import redact, register_secret
from tokenrelay.specs.matrix import MAX_CHARS, MatrixSpec
from workers.channels.base import (
    NO_CALL,
    Budget,
    Call,
    Capabilities,
    ChannelError,
    Format,
    MessageGone,
    OpKind,
    PermanentFailure,
    RateLimited,
    Rejected,
    RenderedMarkdown,
    TooLong,
)
from workers.channels.http import Reply, Transport
from workers.channels.telegram_markdown import to_telegram_html, visible_text
from workers.planner.split import char_units

HTML = "org.matrix.custom.html"
#: sends of one segment in one call whose event turns out redacted before giving up
MAX_RESENDS = 5


class MatrixClient(RenderedMarkdown):
    """One Matrix user (access token). Raises the error types of ``workers.channels.base``."""

    name = "matrix"
    render_markdown = staticmethod(to_telegram_html)

    def __init__(
        self,
        homeserver: str,
        token: str,
        account: str,
        transport: Transport,
        max_chars: int = MAX_CHARS,
        room_rate: float = 1.0,
        account_rate: float = 10.0,
    ) -> None:
        register_secret(token)
        self._base = f"{homeserver}/_matrix/client/v3"
        self._headers = {"Authorization": f"Bearer {token}"}
        self.account = account
        self.transport = transport
        self.capabilities = Capabilities(
            can_edit=True, max_units=max_chars, units=char_units, can_delete=True,
            idempotent_send=True,
        )
        self._room_rate, self._account_rate = room_rate, account_rate

    def __repr__(self) -> str:
        return f"MatrixClient(account={self.account!r}, api_base={self._base!r})"

    def budgets(
        self, chat_id: str, kind: OpKind = "send", message_id: str | None = None
    ) -> list[Budget]:
        scope = f"matrix:{self.account}"
        return [
            Budget(scope, f"room:{chat_id}", self._room_rate, 3),
            Budget(scope, "account", self._account_rate, 10),
        ]

    def send(
        self, chat_id: str, text: str, fmt: Format, final: bool = False, call: Call = NO_CALL
    ) -> str:
        content = message_content(text, fmt, final)
        if not call.key:
            return self._put_event(chat_id, content, txn_id("", "send", content))
        # one txn id per segment, whatever the text: a retry after a lost answer returns the
        # event the first attempt made (with the text of then), which is then edited to this;
        # a send after the user redacted that event takes the next txn id, derived from it
        txn = txn_id(call.key, "send", {})
        for _ in range(MAX_RESENDS):
            event_id = self._put_event(chat_id, content, txn)
            event = self._event(chat_id, event_id)
            if not redacted(event):
                break
            txn = txn_id(call.key, "send", {"after": event_id})
        else:
            raise PermanentFailure(f"matrix: every message sent to {chat_id} is redacted at once")
        shown = event.get("content") or {}
        if any(shown.get(k) != content.get(k) for k in ("body", "formatted_body")):
            edit = edit_content(event_id, content)
            self._put_event(chat_id, edit, txn_id(call.key, "edit", edit))
        return event_id

    def edit(
        self,
        chat_id: str,
        message_id: str,
        text: str,
        fmt: Format,
        final: bool = False,
        call: Call = NO_CALL,
    ) -> None:
        if final:
            self._check_shown(chat_id, message_id)
        content = edit_content(message_id, message_content(text, fmt, final))
        self._put_event(chat_id, content, txn_id(call.key, "edit", content))

    def delete(self, chat_id: str, message_id: str) -> None:
        txn = txn_id(_digest(message_id)[:25], "redact", {})
        url = f"{self._room(chat_id)}/redact/{quote(message_id, safe='')}/{txn}"
        self._request("PUT", url, {}, "redact")

    def _room(self, chat_id: str) -> str:
        return f"{self._base}/rooms/{quote(chat_id, safe='')}"

    def _put_event(self, chat_id: str, content: dict[str, Any], txn: str) -> str:
        url = f"{self._room(chat_id)}/send/m.room.message/{txn}"
        return str(self._request("PUT", url, content, "send")["event_id"])

    def _check_shown(self, chat_id: str, event_id: str) -> None:
        """MessageGone when the user redacted the message: an edit of a redacted event is
        accepted by the server but never shown, so the final text would be lost."""
        if redacted(self._event(chat_id, event_id)):
            raise MessageGone(f"matrix: event {event_id} was redacted", method="event")

    def _event(self, chat_id: str, event_id: str) -> dict[str, Any]:
        url = f"{self._room(chat_id)}/event/{quote(event_id, safe='')}"
        return self._request("GET", url, None, "event")

    def _request(
        self, method: str, url: str, payload: dict[str, Any] | None, route: str
    ) -> dict[str, Any]:
        # every PUT carries its txn id, so retrying one can never create a second event
        reply = self.transport.request(method, url, payload, self._headers, idempotent=True)
        if reply.status == 200:
            return reply.body
        raise read_error(route, reply)


def message_content(text: str, fmt: Format, final: bool) -> dict[str, Any]:
    """The ``m.room.message`` content showing ``text``: HTML plus its plain body."""
    if fmt == "text":
        return {"msgtype": "m.text", "body": text}
    markup = to_telegram_html(text, final=final) if fmt == "markdown" else text
    body = visible_text(markup)
    if not body.strip():
        # e.g. a lone "**" so far: nothing to show yet
        raise Rejected("nothing visible to send yet")
    return {"msgtype": "m.text", "body": body, "format": HTML, "formatted_body": markup}


def redacted(event: dict[str, Any]) -> bool:
    """Whether the user deleted (redacted) this event: its content is gone."""
    return bool((event.get("unsigned") or {}).get("redacted_because")) or not event.get("content")


def edit_content(event_id: str, new: dict[str, Any]) -> dict[str, Any]:
    """An ``m.replace`` edit of ``event_id`` to ``new`` (the fallback body is for clients
    that do not know edits; it leaves out the HTML to keep the event small)."""
    return {
        "msgtype": new["msgtype"],
        "body": f"* {new['body']}",
        "m.new_content": new,
        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
    }


def txn_id(key: str, op: str, content: dict[str, Any]) -> str:
    """A transaction id that is the same for every retry of one operation with one content:
    ``key`` (the core's stable per-segment key, random when absent), the operation, and a
    hash of the content."""
    return f"tr{key or uuid.uuid4().hex}.{op}.{_digest(content)[:20]}"


def _digest(value: object) -> str:
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def read_error(route: str, reply: Reply) -> ChannelError:
    """Map a Matrix error answer (``{"errcode", "error"}``) to the core's error types."""
    errcode = str(reply.body.get("errcode") or f"HTTP {reply.status}")
    desc = redact(str(reply.body.get("error") or errcode))
    where = f"matrix {route}: {errcode}: {desc}"
    data: dict[str, Any] = {"method": route, "code": errcode, "description": desc}
    if reply.status == 429 or errcode == "M_LIMIT_EXCEEDED":
        ms = reply.body.get("retry_after_ms")
        wait = float(ms) / 1000.0 if ms is not None else float(
            reply.headers.get("Retry-After") or 1
        )
        return RateLimited(wait, f"matrix {route}: {desc}", **data)
    if reply.status == 413 or errcode == "M_TOO_LARGE":
        return TooLong(where, **data)
    if route == "event" and errcode == "M_NOT_FOUND":
        return MessageGone(where, **data)
    return PermanentFailure(where, **data)


def build(spec: MatrixSpec, account: str) -> MatrixClient:
    """A client for ``account``, from its settings (``spec.setting``)."""
    def setting(key: str, default: str | None = None) -> str:
        return spec.setting(account, key, default)

    homeserver = setting("HOMESERVER").rstrip("/")
    if not homeserver.startswith(("http://", "https://")):
        raise ConfigError(f"matrix account {account!r}: HOMESERVER must be an http(s) URL")
    try:
        limits = (int(setting("MAX_CHARS", str(MAX_CHARS))),
                  float(setting("ROOM_RATE", "1.0")), float(setting("ACCOUNT_RATE", "10")))
    except ValueError:
        raise ConfigError(
            f"matrix account {account!r}: MAX_CHARS and *_RATE must be numbers"
        ) from None
    return MatrixClient(
        homeserver, setting("ACCESS_TOKEN"), account, Transport(spec.settings.http_timeout),
        *limits,
    )


