"""Feishu / Lark: a reply streams into a CardKit card, because plain-text message edits are
capped (a hidden limit of some 20-30 edits per message).

- send: create a card entity (one markdown element, streaming mode on unless the text is
  final), then send it as an ``interactive`` message by card id. The message id the core keeps
  is ``<om id>:<card id>:<element id>:<card created, unix ms>``: all an update needs.
- edit: ``PUT …/elements/{id}/content`` with the **full** text, a uuid and a ``sequence``;
  at ``final=True`` the message is checked (a recalled one is sent anew) and the text and
  "streaming mode off" go as one ``batch_update`` (one sequence, one of the card's ≤ 10
  operations/s, so a rate limit can never leave the text shown but the card streaming).
  ``sequence`` is the milliseconds since the card was created (from the id), so it
  increases across workers and retries without shared state (int32 lasts 24 days; a card
  takes updates for 14).
- A tenant access token is fetched from the app id and secret, shared by every client of the
  app in this process, fetched by one thread at a time and refreshed before it expires; an
  answer "token invalid" refreshes it once, then fails the stream.

Per-account settings (``tokenrelay.accounts.lookup``, platform ``feishu`` or ``lark``):
``APP_ID``, ``APP_SECRET``, ``API_BASE``, ``MAX_BYTES`` (card text, default 30,000 bytes),
``CHAT_RATE`` (calls/s per chat, default 5) and ``APP_RATE`` (calls/s per app, default 40).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from tokenrelay.config import ConfigError
from tokenrelay.redact import redact, register_secret
from tokenrelay.specs.feishu import MAX_BYTES, FeishuSpec
from workers.channels.base import (
    NO_CALL,
    Ambiguous,
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
    TooLong,
    TransientFailure,
)
from workers.channels.feishu_markdown import card_bytes, to_card_markdown
from workers.channels.http import Reply, Transport
from workers.channels.telegram_markdown import open_fence

#: the one text element of every card
ELEMENT_ID = "reply"
RECEIVE_ID_TYPE = {"oc": "chat_id", "ou": "open_id", "on": "union_id"}
#: seconds before a tenant token's expiry at which it is fetched again (capped at half its life)
REFRESH_MARGIN = 600.0

RATE_LIMITED = frozenset({99991400, 230020})
TOKEN_INVALID = frozenset({99991661, 99991663, 99991664, 99991668})
GONE = frozenset({200740, 200750, 230011})
TOO_LARGE = frozenset({200860, 230025})
#: the card's streaming mode was closed (by a timeout, or at a stop): reopen it
STREAM_CLOSED = frozenset({300309, 200850})
#: "sequence did not increase": a later call has a later sequence
SEQUENCE = frozenset({300317})


class StreamingClosed(Rejected):
    """The card's streaming mode is off: content updates are refused until it is on again."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int = MAX_BYTES
    #: calls per second per chat
    chat_rate: float = 5.0
    #: calls per second per app
    app_rate: float = 40.0


@dataclass(frozen=True)
class CardRef:
    """What the core keeps as a Feishu message id: the message, its card and element."""

    message_id: str
    card_id: str
    element_id: str
    #: unix ms when the card was created (origin of the sequence)
    created_ms: int

    def __str__(self) -> str:
        return f"{self.message_id}:{self.card_id}:{self.element_id}:{self.created_ms}"

    @classmethod
    def parse(cls, text: str) -> CardRef:
        parts = text.split(":")
        if len(parts) != 4 or not parts[3].isdigit():
            raise PermanentFailure(f"feishu: {text!r} is not a card message id")
        return cls(parts[0], parts[1], parts[2], int(parts[3]))

    def sequence(self) -> int:
        """The next operation's sequence: ms since the card was created, and above what this
        process used last for the card (two updates within one ms)."""
        now = max(1, int(time.time() * 1000) - self.created_ms)
        with _sequences_lock:
            seq = max(now, _sequences.pop(self.card_id, 0) + 1)
            _sequences[self.card_id] = seq
            while len(_sequences) > SEQUENCES_KEPT:
                del _sequences[next(iter(_sequences))]
        return seq


#: card id -> the highest sequence this process used (newest last; the oldest are dropped)
_sequences: dict[str, int] = {}
_sequences_lock = threading.Lock()
SEQUENCES_KEPT = 10_000


class TenantToken:
    """One app's tenant access token in this process: fetched by one thread at a time,
    refreshed before it expires, dropped when the platform calls it invalid."""

    def __init__(self, url: str, app_id: str, secret: str, transport: Transport) -> None:
        register_secret(secret)
        self._url = url
        self._app = {"app_id": app_id, "app_secret": secret}
        self._transport = transport
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0  # monotonic seconds

    def get(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._refresh_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self, token: str) -> None:
        """The platform refused ``token``: the next ``get`` fetches a new one."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self) -> None:
        reply = self._transport.post_json(self._url, self._app)
        body = reply.body
        token = body.get("tenant_access_token")
        if body.get("code") != 0 or not isinstance(token, str):
            code, msg = body.get("code"), redact(str(body.get("msg") or f"HTTP {reply.status}"))
            raise PermanentFailure(
                f"feishu auth: code {code}: {msg}", method="tenant_access_token", code=code,
                description=msg,
            )
        register_secret(token)
        lifetime = float(body.get("expire") or 0)
        self._token = token
        self._refresh_at = time.monotonic() + lifetime - min(REFRESH_MARGIN, lifetime / 2)


_tokens: dict[tuple[str, str, str], TenantToken] = {}
_tokens_lock = threading.Lock()


def tenant_token(base: str, app_id: str, secret: str, transport: Transport) -> TenantToken:
    """The process-wide token of app ``app_id`` at ``base`` (one per app, whatever the account
    names)."""
    with _tokens_lock:
        key = (base, app_id, secret)
        token = _tokens.get(key)
        if token is None:
            url = f"{base}/auth/v3/tenant_access_token/internal"
            token = _tokens[key] = TenantToken(url, app_id, secret, transport)
        return token


class FeishuClient:
    """One Feishu/Lark app. Raises the error types of ``workers.channels.base``."""

    def __init__(
        self, name: str, account: str, base: str, token: TenantToken, transport: Transport,
        limits: Limits,
    ) -> None:
        self.name = name
        self.account = account
        self._base = base
        self._token = token
        self.transport = transport
        self.limits = limits
        self.capabilities = Capabilities(
            can_edit=True, max_units=limits.max_bytes, units=card_bytes, can_delete=True,
        )
        #: op key -> (card id, created ms) of the cards this client's sends posted (a retried
        #: send reuses its card, so the message de-dup can recognise it)
        self._sent_cards: dict[str, tuple[str, int]] = {}

    def __repr__(self) -> str:
        return f"FeishuClient(name={self.name!r}, account={self.account!r}, base={self._base!r})"

    def budgets(
        self, chat_id: str, kind: OpKind = "send", message_id: str | None = None
    ) -> list[Budget]:
        # the ≤ 10 operations/s per card fit in the chat's budget: budgets are per chat
        scope = f"{self.name}:{self.account}"
        return [
            Budget(scope, f"chat:{chat_id}", self.limits.chat_rate, 3),
            Budget(scope, "app", self.limits.app_rate, 20),
        ]

    def send(
        self, chat_id: str, text: str, fmt: Format, final: bool = False, call: Call = NO_CALL
    ) -> str:
        card_id, created_ms = self._card_for(call, render(text, fmt), final)
        content = json.dumps({"type": "card", "data": {"card_id": card_id}})
        payload = {"receive_id": chat_id, "msg_type": "interactive", "content": content,
                   "uuid": f"{call.key or uuid.uuid4().hex}-{card_id}"[:50]}
        params = {"receive_id_type": RECEIVE_ID_TYPE[chat_id[:2]]}
        try:
            # the uuid makes the transport's retries of this one message safe
            sent = self._api("POST", "/im/v1/messages", payload, params=params)
        except TransientFailure as exc:
            if isinstance(exc, Ambiguous):
                raise
            raise Ambiguous(f"feishu send: {exc}; the message may exist", method="send") from None
        return str(CardRef(str(sent["message_id"]), card_id, ELEMENT_ID, created_ms))

    def _card_for(self, call: Call, content: str, final: bool) -> tuple[str, int]:
        """The card a send posts: a new one, or, when this op's earlier attempt made a card
        and lost the message's answer, that card again, set to ``content`` first. The
        message ``uuid`` (op key + card id) is then the same, so Feishu's one-hour de-dup
        answers with the message the lost attempt made instead of posting a copy."""
        earlier = self._sent_cards.get(call.key) if call.key else None
        if earlier is not None:
            card_id, created_ms = earlier
            ref = CardRef("", card_id, ELEMENT_ID, created_ms)
            self._batch(ref, content, streaming=not final)
            return earlier
        created_ms = int(time.time() * 1000)
        card = card_json(content, streaming=not final)
        made = self._api("POST", "/cardkit/v1/cards", {"type": "card_json", "data": card})
        card_id = str(made["card_id"])
        if call.key:
            with _sequences_lock:
                self._sent_cards[call.key] = (card_id, created_ms)
                while len(self._sent_cards) > SEQUENCES_KEPT:
                    del self._sent_cards[next(iter(self._sent_cards))]
        return card_id, created_ms

    def edit(
        self,
        chat_id: str,
        message_id: str,
        text: str,
        fmt: Format,
        final: bool = False,
        call: Call = NO_CALL,
    ) -> None:
        ref = CardRef.parse(message_id)
        content = render(text, fmt)
        if final:
            # the last text and "streaming off" as one operation: one sequence, one rate token
            self._check_shown(ref)
            self._batch(ref, content, streaming=False)
            return
        path = f"/cardkit/v1/cards/{ref.card_id}/elements/{ref.element_id}/content"
        try:
            self._api("PUT", path, {"content": content, "uuid": uuid.uuid4().hex,
                                    "sequence": ref.sequence()})
        except StreamingClosed:
            # closed by its timeout (a long tool call): reopen it, showing the text
            self._batch(ref, content, streaming=True)

    def delete(self, chat_id: str, message_id: str) -> None:
        self._api("DELETE", f"/im/v1/messages/{CardRef.parse(message_id).message_id}")

    def settles_differently(self, text: str, fmt: Format) -> bool:
        # a card still in streaming mode shows as "being written": every message needs its
        # final edit, which turns streaming mode off
        return True

    def continuation(self, previous: str, fmt: Format) -> str:
        return open_fence(previous) if fmt == "markdown" else ""

    def _batch(self, ref: CardRef, content: str, streaming: bool) -> None:
        """Set the text and the streaming mode in one ``batch_update``."""
        actions = [
            {"action": "partial_update_element",
             "params": {"element_id": ref.element_id, "partial_element": {"content": content}}},
            {"action": "partial_update_setting",
             "params": {"settings": {"config": {"streaming_mode": streaming}}}},
        ]
        self._api("POST", f"/cardkit/v1/cards/{ref.card_id}/batch_update", {
            "actions": json.dumps(actions, ensure_ascii=False), "uuid": uuid.uuid4().hex,
            "sequence": ref.sequence(),
        })

    def _check_shown(self, ref: CardRef) -> None:
        """MessageGone when the message was recalled: its card would take updates that no
        one sees, and the final text would be lost."""
        got = self._api("GET", f"/im/v1/messages/{ref.message_id}")
        if any(item.get("deleted") for item in got.get("items") or []):
            raise MessageGone("feishu: the message was recalled", method="message")

    def _api(
        self, method: str, path: str, payload: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One Open API call; a refused token is fetched again once."""
        for attempt in (1, 2):
            token = self._token.get()
            headers = {"Authorization": f"Bearer {token}"}
            reply = self.transport.request(method, f"{self._base}{path}", payload, headers,
                                           params=params)
            if reply.body.get("code") == 0:
                data = reply.body.get("data")
                return data if isinstance(data, dict) else {}
            if reply.body.get("code") in TOKEN_INVALID and attempt == 1:
                self._token.invalidate(token)
                continue
            break
        raise read_error(_route(method, path), reply)


def render(text: str, fmt: Format) -> str:
    """The markdown element's content for ``text`` (plain text too: card markdown shows
    prose as written)."""
    content = to_card_markdown(text)
    if not content.strip():
        raise Rejected("nothing visible to send yet")
    return content


def card_json(content: str, streaming: bool) -> str:
    """A card JSON 2.0 with one markdown element showing ``content``."""
    return json.dumps({
        "schema": "2.0",
        "config": {"streaming_mode": streaming, "update_multi": True,
                   "summary": {"content": ""}},
        "body": {"elements": [{"tag": "markdown", "element_id": ELEMENT_ID,
                               "content": content}]},
    }, ensure_ascii=False)


def _route(method: str, path: str) -> str:
    if path.startswith("/cardkit"):
        return "card.create" if path.endswith("/cards") else "card." + path.rsplit("/", 1)[-1]
    return "send" if method == "POST" else f"message.{method.lower()}"


def read_error(route: str, reply: Reply) -> ChannelError:
    """Map a Feishu answer with ``code != 0`` to the core's error types."""
    raw = reply.body.get("code")
    code = raw if isinstance(raw, int) else reply.status
    msg = redact(str(reply.body.get("msg") or f"HTTP {reply.status}"))
    where = f"feishu {route}: code {code}: {msg}"
    data: dict[str, Any] = {"method": route, "code": code, "description": msg}
    if code in RATE_LIMITED or reply.status == 429:
        reset = reply.headers.get("x-ogw-ratelimit-reset") or reply.headers.get("Retry-After")
        return RateLimited(float(reset or 1), where, **data)
    if code in STREAM_CLOSED:
        return StreamingClosed(where, **data)
    if code in GONE:
        return MessageGone(where, **data)
    if code in TOO_LARGE:
        return TooLong(where, **data)
    if code in SEQUENCE:
        return TransientFailure(where, **data)
    return PermanentFailure(where, **data)


def build(spec: FeishuSpec, account: str) -> FeishuClient:
    """A client for ``account``, from its settings (``spec.setting``)."""
    def setting(key: str, default: str | None = None) -> str:
        return spec.setting(account, key, default)

    base = setting("API_BASE", spec.default_base).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ConfigError(f"{spec.name} account {account!r}: API_BASE must be an http(s) URL")
    try:
        limits = Limits(int(setting("MAX_BYTES", str(MAX_BYTES))),
                        float(setting("CHAT_RATE", "5")), float(setting("APP_RATE", "40")))
    except ValueError:
        raise ConfigError(
            f"{spec.name} account {account!r}: MAX_BYTES and *_RATE must be numbers"
        ) from None
    transport = Transport(spec.settings.http_timeout)
    token = tenant_token(base, setting("APP_ID"), setting("APP_SECRET"), transport)
    return FeishuClient(spec.name, account, base, token, transport, limits)


