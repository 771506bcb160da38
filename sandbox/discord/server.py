"""The Discord REST API emulator: create, edit and delete channel messages.

Answers as Discord does: message objects, errors as ``{"message", "code"}`` (401 ``0``, 403
``50001`` Missing Access, 404 ``10003`` Unknown Channel / ``10008`` Unknown Message, 400
``50006`` empty message, 400 ``50035`` Invalid Form Body with ``BASE_TYPE_MAX_LENGTH`` past
``max_chars``), per-route buckets (``route_limit`` calls per ``route_window`` seconds per
channel and route) announced in ``X-RateLimit-Limit/Remaining/Reset-After/Reset/Bucket``,
a global limit per bot token (``global_rate`` per second), and 429 answers with a body
``{"message", "retry_after" (float s), "global"}`` and ``Retry-After``. A create with
``nonce`` + ``enforce_nonce: true`` that repeats one of the last ``nonce_ttl`` seconds
returns the message already created. The ledger's text is what a reader sees of plain text
(backslash escapes resolved); ``raw_text`` is the content as sent.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from sandbox.slack.loopback import Answer, BaseKnobs, LoopbackEmulator, Request
from sandbox.telegram.flood import TokenBucket
from sandbox.telegram.ledger import SandboxCall, SandboxMessage

__all__ = ["ID_BASE", "DiscordEmulator", "DiscordKnobs", "visible_text"]

#: a message's snowflake is ID_BASE + its ledger id
ID_BASE = 1_100_000_000_000_000_000
_PATH = re.compile(r"^/api/v10/channels/([^/]+)/messages(?:/([^/]+))?$")
_ESCAPE = re.compile(r"\\([^A-Za-z0-9\s])")


@dataclass(frozen=True)
class DiscordKnobs(BaseKnobs):
    max_chars: int = 2000  #: characters of a message's content
    route_limit: int = 5  #: calls per route and channel per window
    route_window: float = 5.0  #: seconds of a route bucket's window
    global_rate: float = 50.0  #: calls per second per bot token
    nonce_ttl: float = 300.0  #: seconds a nonce is remembered


def visible_text(content: str) -> str:
    """Plain text as a reader sees it: backslash escapes resolved."""
    return _ESCAPE.sub(r"\1", content)


class _Refused(Exception):
    def __init__(self, status: int, message: str, code: int, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "code": code, **extra}
        self.headers: dict[str, str] = {}


class DiscordEmulator(LoopbackEmulator):
    """A Discord REST API on a loopback port; clients use ``api_base`` (``…/api/v10``)."""

    knobs_class = DiscordKnobs
    platform = "discord"
    server_error: ClassVar[dict[str, Any]] = {"message": "500: Internal Server Error", "code": 0}

    def __init__(self, host: str = "127.0.0.1", **knobs: Any) -> None:
        super().__init__(host, **knobs)
        #: (route, channel) -> [remaining, monotonic reset time]
        self._routes: dict[tuple[str, str], list[float]] = {}
        self._global: dict[str, TokenBucket] = {}
        self._nonces: dict[tuple[str, str], tuple[int, float]] = {}
        self._forbidden: set[str] = set()

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/v10"

    def tokenrelay_env(self, account: str = "default") -> dict[str, str]:
        """TOKENRELAY_* variables pointing the Discord client at this emulator."""
        prefix = "TOKENRELAY_DISCORD_" + ("" if account == "default" else f"{account.upper()}_")
        k = self.knobs
        return {
            prefix + "BOT_TOKEN": k.token or "sandbox.discord.token",
            prefix + "API_BASE": self.api_base,
            prefix + "CHANNEL_RATE": str(0.9 * k.route_limit / k.route_window),
            prefix + "CHANNEL_BURST": str(k.route_limit),
            prefix + "GLOBAL_RATE": str(0.9 * k.global_rate),
        }

    def forbid(self, chat_id: str) -> None:
        """The bot loses access to the channel: writes answer 403 Missing Access."""
        with self._cond:
            self._forbidden.add(str(chat_id))

    def route(self, request: Request, call: SandboxCall) -> Answer:
        match = _PATH.match(request.path)
        chat = match[1] if match else None
        kind = {"POST": "create", "PATCH": "edit", "DELETE": "delete"}.get(request.method, "?")
        content = request.body.get("content")
        call = replace(call, method=kind, chat_id=chat,
                       text_len=len(content) if isinstance(content, str) else None)
        headers: dict[str, str] = {}
        try:
            self._authorise(request)
            if match is None or kind == "?" or (kind == "create") == bool(match[2]):
                raise _Refused(404, "404: Not Found", 0)
            chat = match[1]
            if not chat.isdigit():
                raise _Refused(404, "Unknown Channel", 10003)
            if chat in self._forbidden:
                raise _Refused(403, "Missing Access", 50001)
            headers = self._rate(request, kind, chat)
            status, message = getattr(self, f"_{kind}")(request, chat, match[2])
        except _Refused as exc:
            retry = exc.body.get("retry_after")
            call = replace(call, status=exc.status, error=exc.body["message"],
                           retry_after=None if retry is None else math.ceil(retry))
            return Answer(exc.status, exc.body, call, {**headers, **exc.headers})
        call = replace(call, status=status, ok=True, message_id=message.message_id)
        payload = None if status == 204 else self._json(message)
        return Answer(status, payload, call, headers)

    # -- methods -----------------------------------------------------------------------------

    def _create(self, req: Request, chat: str, _: str | None) -> tuple[int, SandboxMessage]:
        content = self._content(req.body)
        nonce = req.body.get("nonce")
        if nonce is not None and (not isinstance(nonce, (str, int)) or len(str(nonce)) > 25):
            raise _Refused(400, "Invalid Form Body", 50035,
                           errors={"nonce": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}})
        key = (chat, str(nonce))
        seen = self._nonces.get(key)
        if req.body.get("enforce_nonce") and seen and req.now - seen[1] < self.knobs.nonce_ttl:
            existing = self._ledger.messages(chat, include_deleted=True)[seen[0] - 1]
            return 200, existing
        message = self._ledger.add_message(chat, content, visible_text(content), None, req.now)
        if nonce is not None:
            self._nonces[key] = (message.message_id, req.now)
        return 200, message

    def _edit(self, req: Request, chat: str, mid: str | None) -> tuple[int, SandboxMessage]:
        message = self._message(chat, mid)
        content = self._content(req.body)
        self._ledger.edit(message, content, visible_text(content), None, req.now)
        return 200, message

    def _delete(self, req: Request, chat: str, mid: str | None) -> tuple[int, SandboxMessage]:
        message = self._message(chat, mid)
        self._ledger.remove(message)
        return 204, message

    # -- checks ------------------------------------------------------------------------------

    def _authorise(self, req: Request) -> None:
        auth = req.headers.get("authorization", "")
        token = auth.removeprefix("Bot ")
        expected = self.knobs.token
        if not auth.startswith("Bot ") or not token or (expected and token != expected):
            raise _Refused(401, "401: Unauthorized", 0)

    def _message(self, chat: str, mid: str | None) -> SandboxMessage:
        ledger_id = int(mid) - ID_BASE if mid and mid.isdigit() else -1
        message = self._ledger.find(chat, ledger_id)
        if message is None:
            raise _Refused(404, "Unknown Message", 10008)
        return message

    def _content(self, body: dict[str, Any]) -> str:
        content = body.get("content")
        if not isinstance(content, str) or not content.strip():
            raise _Refused(400, "Cannot send an empty message", 50006)
        if len(content) > self.knobs.max_chars:
            raise _Refused(400, "Invalid Form Body", 50035, errors={"content": {"_errors": [{
                "code": "BASE_TYPE_MAX_LENGTH",
                "message": f"Must be {self.knobs.max_chars} or fewer in length.",
            }]}})
        return content

    def _rate(self, req: Request, kind: str, chat: str) -> dict[str, str]:
        """Take from the bot's global bucket and the route's; the route's headers."""
        k = self.knobs
        token = req.headers.get("authorization", "")
        bucket = self._global.get(token)
        if bucket is None or bucket.rate != k.global_rate:
            bucket = self._global[token] = TokenBucket(k.global_rate, int(k.global_rate), req.now)
        wait = bucket.wait(req.now)
        if wait > 0:
            exc = _Refused(429, "You are being rate limited.", 0, retry_after=round(wait, 3),
                           **{"global": True})
            exc.headers = {"Retry-After": str(math.ceil(wait)), "X-RateLimit-Global": "true",
                           "X-RateLimit-Scope": "global"}
            raise exc
        state = self._routes.setdefault((kind, chat), [k.route_limit, req.now + k.route_window])
        if req.now >= state[1]:
            state[:] = [k.route_limit, req.now + k.route_window]
        reset_after = max(0.0, state[1] - req.now)
        headers = {
            "X-RateLimit-Limit": str(k.route_limit),
            "X-RateLimit-Bucket": f"{kind}-{chat[-6:]}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        }
        if state[0] <= 0:
            exc = _Refused(429, "You are being rate limited.", 0,
                           retry_after=round(reset_after, 3), **{"global": False})
            exc.headers = {**headers, "X-RateLimit-Remaining": "0",
                           "Retry-After": str(math.ceil(reset_after)),
                           "X-RateLimit-Scope": "user"}
            raise exc
        bucket.take(req.now)
        state[0] -= 1
        return {**headers, "X-RateLimit-Remaining": str(int(state[0]))}

    @staticmethod
    def _json(message: SandboxMessage) -> dict[str, Any]:
        return {
            "id": str(ID_BASE + message.message_id), "channel_id": message.chat_id,
            "content": message.raw_text, "type": 0,
            "edited_timestamp": None if not message.edits else "2024-01-01T00:00:00+00:00",
        }
