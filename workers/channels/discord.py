"""Discord REST API: POST / PATCH channel messages, nonces, rate-limit headers, error codes.

Sends carry ``nonce`` = the core's idempotency key with ``enforce_nonce: true``: a send retried
after a lost answer returns the message already created instead of a copy, so sends are safe
to retry. Content is at most 2,000 characters. Rate limits: about 5 calls per 5 s per channel
and 50/s per bot (settings), plus what the ``X-RateLimit-*`` headers announce (``observed``).
Invalid requests (401, 403, 429) are counted per process: Discord bans an IP after 10,000 in
10 minutes, so the client refuses to go on before a lower threshold.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokenrelay.redact import redact, register_secret
from tokenrelay.specs.discord import MAX_CHARS, DiscordSpec
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
from workers.channels.discord_markdown import discord_units, escape, to_discord
from workers.channels.http import Reply, Transport

DEFAULT_API_BASE = "https://discord.com/api/v10"
#: calls per second per channel (about 5 per 5 s observed) and the bucket's size
CHANNEL_RATE, CHANNEL_BURST = 1.0, 5
#: calls per second per bot (Discord's global limit)
GLOBAL_RATE, GLOBAL_BURST = 50.0, 50
#: invalid requests (401/403/429) per window after which this process stops calling Discord;
#: Discord bans the IP at 10,000 per 10 minutes
INVALID_LIMIT = 8000
#: seconds of the invalid-request window
INVALID_WINDOW = 600.0
_ID = re.compile(r"/\d+")
#: statuses Discord counts as invalid requests
INVALID_STATUSES = frozenset({401, 403, 429})
#: never ping anybody from streamed LLM text
NO_MENTIONS: dict[str, list[str]] = {"parse": []}


class InvalidRequests:
    """Invalid requests answered to this process within a sliding window (thread-safe)."""

    def __init__(self, window: float = INVALID_WINDOW) -> None:
        self.window = window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def add(self, now: float | None = None) -> None:
        with self._lock:
            self._times.append(time.monotonic() if now is None else now)

    def count(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._times and self._times[0] <= now - self.window:
                self._times.popleft()
            return len(self._times)


#: one counter per process: Discord's ban is per IP, whatever the bot
INVALID = InvalidRequests()


@dataclass(frozen=True)
class RateHeaders:
    """What one answer's ``X-RateLimit-*`` headers say about its route's bucket."""

    limit: int | None = None
    remaining: int | None = None
    #: seconds until the bucket refills
    reset_after: float | None = None
    bucket: str | None = None
    is_global: bool = False
    scope: str | None = None


def read_rate_headers(headers: Mapping[str, str]) -> RateHeaders | None:
    """Parse the ``X-RateLimit-*`` headers (any case); None when there are none."""
    h = {k.lower(): v for k, v in headers.items()}
    if not any(k.startswith("x-ratelimit-") for k in h):
        return None

    def number(name: str, kind: type) -> Any:
        try:
            return kind(h[f"x-ratelimit-{name}"])
        except (KeyError, ValueError):
            return None

    return RateHeaders(
        limit=number("limit", int),
        remaining=number("remaining", int),
        reset_after=number("reset-after", float),
        bucket=h.get("x-ratelimit-bucket"),
        is_global=h.get("x-ratelimit-global", "").lower() == "true",
        scope=h.get("x-ratelimit-scope"),
    )


class DiscordClient(RenderedMarkdown):
    """One bot token. Raises the error types of ``workers.channels.base``."""

    name = "discord"
    render_markdown = staticmethod(to_discord)

    def __init__(
        self,
        token: str,
        account: str,
        transport: Transport,
        *,
        api_base: str = DEFAULT_API_BASE,
        max_chars: int = MAX_CHARS,
        channel_rate: float = CHANNEL_RATE,
        channel_burst: int = CHANNEL_BURST,
        global_rate: float = GLOBAL_RATE,
        invalid_limit: int = INVALID_LIMIT,
        invalid: InvalidRequests = INVALID,
    ) -> None:
        if not token or any(c.isspace() for c in token):
            raise PermanentFailure(f"discord account {account!r}: malformed bot token")
        register_secret(token)
        self.account = account
        self.transport = transport
        self.capabilities = Capabilities(
            can_edit=True, max_units=max_chars, units=discord_units, can_delete=True,
            idempotent_send=True,
        )
        self._headers = {"Authorization": f"Bot {token}"}
        self._base = api_base.rstrip("/")
        scope = f"discord:{account}"
        self._global = Budget(scope, "global", global_rate, GLOBAL_BURST)
        self._channel = (scope, channel_rate, channel_burst)
        self._invalid_limit = invalid_limit
        self._invalid = invalid
        #: chat -> budgets the headers said are spent, with the seconds until they refill
        self._observed: dict[str, list[tuple[Budget, float]]] = {}
        #: idempotency keys whose message the user deleted (the next send is a new message)
        self._resent: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DiscordClient(account={self.account!r}, api_base={self._base!r})"

    def budgets(
        self, chat_id: str, kind: OpKind = "send", message_id: str | None = None
    ) -> list[Budget]:
        scope, rate, burst = self._channel
        return [Budget(scope, f"channel:{chat_id}", rate, burst), self._global]

    def observed(self, chat_id: str) -> list[tuple[Budget, float]]:
        """Budgets to drain for N seconds, as the last answers' headers announced (each
        reported once)."""
        with self._lock:
            return self._observed.pop(chat_id, [])

    def send(
        self, chat_id: str, text: str, fmt: Format, final: bool = False, call: Call = NO_CALL
    ) -> str:
        payload: dict[str, Any] = {
            "content": render(text, fmt, final), "allowed_mentions": NO_MENTIONS,
        }
        if call.key:
            payload |= {"nonce": self._nonce(call.key), "enforce_nonce": True}
        body = self._call(
            "POST", chat_id, f"/channels/{chat_id}/messages", payload, idempotent=bool(call.key)
        )
        return str(body["id"])

    def edit(
        self,
        chat_id: str,
        message_id: str,
        text: str,
        fmt: Format,
        final: bool = False,
        call: Call = NO_CALL,
    ) -> None:
        payload = {"content": render(text, fmt, final), "allowed_mentions": NO_MENTIONS}
        try:
            self._call("PATCH", chat_id, f"/channels/{chat_id}/messages/{message_id}", payload)
        except MessageGone:
            if call.key:
                with self._lock:
                    self._resent.add(call.key)
            raise

    def _nonce(self, key: str) -> str:
        """The send's nonce: the core's key, or for a message sent anew after the user
        deleted it (the same key: the deleted message's nonce would return it) a nonce derived
        from the key, equally stable across retries."""
        with self._lock:
            if key not in self._resent:
                return key
        return hashlib.sha256(f"resent:{key}".encode()).hexdigest()[:25]

    def delete(self, chat_id: str, message_id: str) -> None:
        self._call("DELETE", chat_id, f"/channels/{chat_id}/messages/{message_id}", None)

    def _call(
        self,
        method: str,
        chat_id: str,
        path: str,
        payload: dict[str, Any] | None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        route = f"{method} {_ID.sub('/:id', path)}"
        spent = self._invalid.count()
        if spent >= self._invalid_limit:
            raise PermanentFailure(
                f"discord: {spent} invalid requests in {INVALID_WINDOW / 60:g} minutes; "
                "stopping before Discord bans this IP", method=route,
            )
        reply = self.transport.request(
            method, self._base + path, payload, self._headers, idempotent=idempotent
        )
        if reply.status in INVALID_STATUSES:
            self._invalid.add()
        self._observe(chat_id, reply)
        if 200 <= reply.status < 300:
            return reply.body
        raise read_error(route, reply)

    def _observe(self, chat_id: str, reply: Reply) -> None:
        seen: list[tuple[Budget, float]] = []
        limits = read_rate_headers(reply.headers)
        if limits and limits.remaining == 0 and limits.reset_after:
            seen.append((self.budgets(chat_id)[0], limits.reset_after))
        if reply.status == 429 and reply.body.get("global"):
            seen.append((self._global, float(reply.body.get("retry_after") or 1)))
        if seen:
            with self._lock:
                self._observed[chat_id] = seen


def render(text: str, fmt: Format, final: bool) -> str:
    """The ``content`` for ``fmt``; Rejected when nothing would be visible."""
    content = to_discord(text, final) if fmt == "markdown" else (
        text if fmt == "html" else escape(text)
    )
    if not content.replace("\u200b", "").strip():
        raise Rejected("nothing visible to send yet")
    return content


def read_error(route: str, reply: Reply) -> ChannelError:
    """Map a Discord error answer to the core's error types (the one place)."""
    body = reply.body
    code = body.get("code")
    message = redact(str(body.get("message") or f"HTTP {reply.status}"))
    where = f"discord {route}: {message}"
    data: dict[str, Any] = {"method": route, "code": code or reply.status, "description": message}
    if reply.status == 429:
        headers = {k.lower(): v for k, v in reply.headers.items()}
        wait = body.get("retry_after") or headers.get("retry-after") or 1
        scope = "global" if body.get("global") or headers.get("x-ratelimit-global") else None
        return RateLimited(float(wait), where, scope=scope, **data)
    if code == 10008:
        return MessageGone(where, **data)
    if code == 50035 and "BASE_TYPE_MAX_LENGTH" in str(body.get("errors")):
        return TooLong(where, **data)
    if code in (50006, 50035):
        return Rejected(where, **data)
    return PermanentFailure(where, **data)


def build(spec: DiscordSpec, account: str) -> DiscordClient:
    """A client for ``account``, from its settings (``spec.setting``)."""
    def get(key: str, default: object) -> str:
        return spec.setting(account, key, default)

    return DiscordClient(
        spec.setting(account, "BOT_TOKEN"),
        account,
        Transport(spec.settings.http_timeout),
        api_base=get("API_BASE", DEFAULT_API_BASE),
        max_chars=int(get("MAX_CHARS", MAX_CHARS)),
        channel_rate=float(get("CHANNEL_RATE", CHANNEL_RATE)),
        channel_burst=int(get("CHANNEL_BURST", CHANNEL_BURST)),
        global_rate=float(get("GLOBAL_RATE", GLOBAL_RATE)),
        invalid_limit=int(get("INVALID_REQUEST_LIMIT", INVALID_LIMIT)),
    )


