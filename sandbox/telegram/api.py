"""The Bot API's methods over a ledger: parameter checks, entity parsing, flood limits, errors.

No HTTP here: ``BotApi.call`` takes a token, a method name and parsed parameters and returns an
``ApiReply``; client errors are ``ApiError``s turned into Telegram's error answers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.telegram.entities import (
    PARSE_MODES,
    TRIMMED,
    EntityParseError,
    utf16_len,
    visible_text,
)
from sandbox.telegram.flood import FloodControl, is_private
from sandbox.telegram.knobs import LIMIT_KNOBS, Knobs
from sandbox.telegram.ledger import Ledger, SandboxDraft, SandboxMessage, normalise_chat_id

__all__ = [
    "BLOCKED",
    "NOT_MODIFIED",
    "ApiError",
    "ApiReply",
    "BotApi",
    "chat_id_param",
    "int_param",
]


class ApiError(Exception):
    """A Bot API error answer: HTTP ``status`` and Telegram's ``description``."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.status}
        body["description"] = self.description
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


@dataclass(frozen=True)
class ApiReply:
    """How the Bot API answered one call."""

    status: int
    payload: dict[str, Any]
    message_id: int | None = None
    error: str | None = None
    retry_after: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class _Request:
    bot_id: int
    params: dict[str, Any]
    now: float


_TOKEN = re.compile(r"^(\d+):[A-Za-z0-9_-]+$")
_CHAT_ID = re.compile(r"^-?\d+$|^@[A-Za-z0-9_]{1,64}$")
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
BLOCKED = "Forbidden: bot was blocked by the user"
#: seconds a message draft stays visible after its last update
DRAFT_TTL = 30.0


def chat_id_param(params: dict[str, Any]) -> str:
    """The request's chat_id, normalised; 400 "chat not found" when missing or malformed."""
    value = params.get("chat_id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and _CHAT_ID.match(value.strip()):
        return normalise_chat_id(value)
    raise ApiError(400, "Bad Request: chat not found")


def int_param(params: dict[str, Any], name: str) -> int | None:
    value = params.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


class BotApi:
    """The Bot API's methods over a ledger: validation, entity parsing, flood limits, answers.

    Callers hold ``ledger.cond`` around ``call``, which answers client errors instead of raising.
    """

    def __init__(self, ledger: Ledger, knobs: Knobs) -> None:
        self.ledger = ledger
        self.knobs = knobs
        self.flood = FloodControl(knobs)
        self.blocked: set[str] = set()
        #: False: answer sendMessageDraft as a Bot API server older than 9.3 does (404)
        self.drafts_enabled = True
        #: seconds a draft stays visible after its last update
        self.draft_ttl = DRAFT_TTL
        self._methods: dict[str, Callable[[_Request], ApiReply]] = {
            "getMe": self.get_me,
            "sendMessage": self.send_message,
            "editMessageText": self.edit_message_text,
            "deleteMessage": self.delete_message,
            "sendChatAction": self.send_chat_action,
            "sendMessageDraft": self.send_message_draft,
        }
        #: method names are case-insensitive in the Bot API
        self.canonical = {name.lower(): name for name in self._methods}

    def reconfigure(self, knobs: Knobs) -> None:
        """Adopt new knobs; a change of any limit starts the flood state afresh."""
        if any(getattr(knobs, k) != getattr(self.knobs, k) for k in LIMIT_KNOBS):
            self.flood = FloodControl(knobs)
        self.knobs = knobs

    def reset(self) -> None:
        self.flood = FloodControl(self.knobs)
        self.blocked.clear()

    def call(
        self, token: str | None, method: str, params: dict[str, Any] | ApiError, now: float
    ) -> ApiReply:
        """Run one method; ``token`` None or an unknown ``method`` is a 404."""
        try:
            if token is None:
                raise ApiError(404, "Not Found")
            bot_id = self._authorise(token)
            handler = self._methods.get(self.canonical.get(method.lower(), ""))
            if handler is None:
                raise ApiError(404, "Not Found")
            if isinstance(params, ApiError):
                raise params
            return handler(_Request(bot_id, params, now))
        except ApiError as exc:
            return ApiReply(
                exc.status, exc.payload(), error=exc.description, retry_after=exc.retry_after
            )

    def _authorise(self, token: str) -> int:
        """The bot id of an accepted token; 401 otherwise."""
        match = _TOKEN.match(token)
        accepted = match is not None if self.knobs.token is None else token == self.knobs.token
        if not accepted:
            raise ApiError(401, "Unauthorized")
        return int(match[1]) if match else 0

    # -- methods -------------------------------------------------------------------------------

    def get_me(self, req: _Request) -> ApiReply:
        return self._ok(self._bot_user(req.bot_id))

    def send_message(self, req: _Request) -> ApiReply:
        chat_id = self._open_chat(req.params)
        raw, text, mode = self._text(req.params)
        self._take_budget(req, chat_id)
        message = self.ledger.add_message(chat_id, raw, text, mode, req.now)
        self.ledger.end_draft(chat_id)
        return self._ok(self._message_json(message, req.bot_id), message.message_id)

    def edit_message_text(self, req: _Request) -> ApiReply:
        chat_id = self._open_chat(req.params)
        raw, text, mode = self._text(req.params)
        message_id = int_param(req.params, "message_id")
        message = None if message_id is None else self.ledger.find(chat_id, message_id)
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if message.text == text and message.parse_mode == mode:
            raise ApiError(400, NOT_MODIFIED)
        self._take_budget(req, chat_id)
        self.ledger.edit(message, raw, text, mode, req.now)
        result = self._message_json(message, req.bot_id) | {"edit_date": int(time.time())}
        return self._ok(result, message.message_id)

    def delete_message(self, req: _Request) -> ApiReply:
        chat_id = chat_id_param(req.params)
        message_id = int_param(req.params, "message_id")
        message = None if message_id is None else self.ledger.find(chat_id, message_id)
        if message is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        self.ledger.remove(message)
        return self._ok(True, message.message_id)

    def send_chat_action(self, req: _Request) -> ApiReply:
        self._open_chat(req.params)
        if req.params.get("action") not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return self._ok(True)

    def send_message_draft(self, req: _Request) -> ApiReply:
        if not self.drafts_enabled:
            raise ApiError(404, "Not Found")
        chat_id = self._open_chat(req.params)
        if not is_private(chat_id):
            raise ApiError(400, "Bad Request: message drafts can be sent only to private chats")
        draft_id = int_param(req.params, "draft_id")
        if not draft_id:
            raise ApiError(400, "Bad Request: draft_id must be non-zero")
        _, text, _ = self._text(req.params)
        self.ledger.add_draft(SandboxDraft(req.now, chat_id, draft_id, text))
        return self._ok(True)

    # -- helpers -------------------------------------------------------------------------------

    def _open_chat(self, params: dict[str, Any]) -> str:
        """The chat_id of a call that writes to the chat: 403 if the user blocked the bot."""
        chat_id = chat_id_param(params)
        if chat_id in self.blocked:
            raise ApiError(403, BLOCKED)
        return chat_id

    def _text(self, params: dict[str, Any]) -> tuple[str, str, str | None]:
        """(raw text, visible text, canonical parse_mode), or the error Telegram gives."""
        raw = params.get("text")
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            raw = str(raw)
        if not isinstance(raw, str) or not raw.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if re.search("[\ud800-\udfff]", raw):
            raise ApiError(400, "Bad Request: text must be encoded in UTF-8")
        mode = params.get("parse_mode") or None
        if mode is not None:
            mode = PARSE_MODES.get(str(mode).lower())
            if mode is None:
                raise ApiError(400, "Bad Request: unsupported parse_mode")
        try:
            text = visible_text(raw, mode).strip(TRIMMED)
        except EntityParseError as exc:
            raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        if not text:
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > self.knobs.max_units:
            raise ApiError(400, "Bad Request: message is too long")
        return raw, text, mode

    def _take_budget(self, req: _Request, chat_id: str) -> None:
        retry_after = self.flood.acquire(req.bot_id, chat_id, req.now)
        if retry_after is not None:
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)

    @staticmethod
    def _ok(result: Any, message_id: int | None = None) -> ApiReply:
        return ApiReply(200, {"ok": True, "result": result}, message_id=message_id)

    @staticmethod
    def _bot_user(bot_id: int) -> dict[str, Any]:
        return {
            "id": bot_id,
            "is_bot": True,
            "first_name": "tokenrelay sandbox",
            "username": "tokenrelay_sandbox_bot",
        }

    def _message_json(self, message: SandboxMessage, bot_id: int) -> dict[str, Any]:
        chat_id: int | str = message.chat_id
        if re.fullmatch(r"-?\d+", message.chat_id):
            chat_id = int(message.chat_id)
        if is_private(message.chat_id):
            chat_type = "private"
        elif message.chat_id.startswith("-100") or message.chat_id.startswith("@"):
            chat_type = "supergroup"
        else:
            chat_type = "group"
        return {
            "message_id": message.message_id,
            "from": self._bot_user(bot_id),
            "chat": {"id": chat_id, "type": chat_type},
            "date": message.date,
            "text": message.text,
        }
