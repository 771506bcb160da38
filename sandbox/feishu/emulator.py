"""``FeishuEmulator``: the Feishu/Lark Open API calls a streaming bot makes, on a loopback port.

Routes (under ``/open-apis``; answers ``{"code": 0, "msg": "success", "data": …}``, errors a
non-zero ``code``):

- ``POST auth/v3/tenant_access_token/internal`` {app_id, app_secret} -> a token living
  ``token_ttl`` seconds (10003 unknown app, 10014 wrong secret).
- ``POST cardkit/v1/cards`` {type: card_json, data} -> ``card_id`` (200860 over 30 KB).
- ``PUT cardkit/v1/cards/{card_id}/elements/{element_id}/content`` {content, uuid, sequence}.
- ``PATCH cardkit/v1/cards/{card_id}/settings`` {settings, uuid, sequence}.
- ``POST cardkit/v1/cards/{card_id}/batch_update`` {actions, uuid, sequence}: the actions
  ``partial_update_setting`` and ``partial_update_element`` as one operation.
- ``POST im/v1/messages?receive_id_type=…`` {receive_id, msg_type: interactive, content, uuid}.
- ``GET`` / ``DELETE im/v1/messages/{message_id}`` (a recalled message reads ``deleted``).

Enforced: a bearer tenant token that is known and unexpired (99991661 missing, 99991663
invalid or expired); card operations with a strictly increasing ``sequence`` per card (300317;
a repeated ``uuid`` is an already-done operation and answers success), streaming mode on for
content updates (300309, and 200850 once it has been on for ``streaming_timeout`` s), at most
``card_rate`` operations/s per card and ``chat_rate`` messages/s per chat (HTTP 429, code
99991400, header ``x-ogw-ratelimit-reset``), the card size, receive_id_type matching the id,
message ``uuid`` dedupe, and a bot removed from a chat (230002). The ledger shows each sent
card's text elements, edit by edit.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import uuid
from typing import Any

from sandbox.feishu.cards import Card, CardError, card_size
from sandbox.feishu.knobs import FeishuKnobs
from sandbox.matrix.loopback import Answer, LoopbackEmulator, Request
from sandbox.telegram.flood import TokenBucket

__all__ = ["FeishuEmulator", "LarkEmulator"]

_RECEIVE_TYPES = {"chat_id": "oc_", "open_id": "ou_", "union_id": "on_"}
_APP_ID = re.compile(r"^cli_[A-Za-z0-9]+$")
#: the default app of the sandbox
APP_ID, APP_SECRET = "cli_sandbox0tokenrelay", "sandbox-app-secret"


class FeishuError(Exception):
    """A Feishu error answer: HTTP status, ``code`` and ``msg``."""

    def __init__(self, code: int, msg: str, status: int = 400, **headers: str) -> None:
        super().__init__(msg)
        self.answer: Answer = (status, {"code": code, "msg": msg}, dict(headers))


class FeishuEmulator(LoopbackEmulator):
    """Feishu (or Lark) Open API on a loopback port, with fault knobs and a ledger per chat."""

    knobs_class = FeishuKnobs
    platform = "feishu"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **knobs: Any) -> None:
        super().__init__(host, port, **knobs)
        self._ids = itertools.count(7_355_000_000_000_000_001)
        self.reset_platform()

    def reset_platform(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (app id, expires at)
        self._cards: dict[str, Card] = {}
        self._messages: dict[str, str] = {}  # message uuid -> message id
        self._chat_of: dict[str, str] = {}  # message id -> chat id
        self._buckets: dict[str, TokenBucket] = {}
        self._removed: set[str] = set()

    # -- test controls -------------------------------------------------------------------------

    def tokenrelay_env(self) -> dict[str, str]:
        """TOKENRELAY_* variables pointing the default account at this sandbox."""
        prefix = f"TOKENRELAY_{self.platform.upper()}_"
        return {
            prefix + "API_BASE": f"{self.base_url}/open-apis",
            prefix + "APP_ID": self.knobs.app_id or APP_ID,
            prefix + "APP_SECRET": self.knobs.app_secret or APP_SECRET,
        }

    def revoke_tokens(self) -> None:
        """Every tenant token issued so far stops working (99991663)."""
        with self._cond:
            self._tokens.clear()

    def tokens_issued(self) -> int:
        return self.count("tenant_access_token", 200)

    def remove_bot(self, chat_id: str) -> None:
        """The bot is removed from the chat: sends answer 230002."""
        with self._cond:
            self._removed.add(chat_id)

    def recall(self, chat_id: str, message_id: str) -> None:
        """The message is recalled (deleted); KeyError if it isn't there."""
        self.take_down(chat_id, message_id)

    def card(self, card_id: str) -> Card:
        with self._cond:
            return self._cards[card_id]

    # -- serving -------------------------------------------------------------------------------

    def fault_answer(self) -> Answer:
        return 500, {"code": 1, "msg": "Internal Server Error"}, {}

    def retry_after(self, answer: Answer) -> float | None:
        value = answer[2].get("x-ogw-ratelimit-reset")
        return None if value is None else float(value)

    def serve(self, request: Request, now: float) -> tuple[str, str | None, Answer]:
        seg, method = request.segments, request.method
        name, chat = _call_name(method, seg), None
        try:
            if seg[0] != "open-apis" or len(seg) < 4:
                raise FeishuError(404, "404 page not found", 404)
            body = request.body if isinstance(request.body, dict) else {}
            if request.bad_json:
                raise FeishuError(9499, "Bad Request: invalid JSON", 400)
            if name == "tenant_access_token":
                return name, None, self._token(body, now)
            app_id = self._authorise(request, now)
            if seg[1:4] == ("cardkit", "v1", "cards"):
                card = self._cards.get(seg[4]) if len(seg) > 4 else None
                chat = card.message[0] if card is not None and card.message else None
                return name, chat, self._cardkit(name, card, seg[5:], app_id, body, now)
            if name == "send":
                chat = str(body.get("receive_id", ""))
                return name, chat, self._send(request, body, app_id, now)
            if name in ("message.get", "message.delete"):
                chat = self._chat_of.get(seg[4])
                return name, chat, self._message(method, seg[4])
            raise FeishuError(404, "404 page not found", 404)
        except FeishuError as exc:
            return name, chat, exc.answer

    def _token(self, body: dict[str, Any], now: float) -> Answer:
        app_id, secret = body.get("app_id"), body.get("app_secret")
        k = self.knobs
        if not isinstance(app_id, str) or not _APP_ID.match(app_id) or (
            k.app_id is not None and app_id != k.app_id
        ):
            raise FeishuError(10003, "invalid param: app_id")
        if not isinstance(secret, str) or not secret or (
            k.app_secret is not None and secret != k.app_secret
        ):
            raise FeishuError(10014, "app secret invalid")
        token = f"t-{uuid.uuid4().hex}"
        self._tokens[token] = (app_id, now + k.token_ttl)
        expire = max(1, math.floor(k.token_ttl))
        return 200, {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": expire}, {}

    def _authorise(self, request: Request, now: float) -> str:
        token = request.bearer()
        if not token:
            raise FeishuError(99991661, "Missing access token for authorization.")
        held = self._tokens.get(token)
        if held is None or held[1] <= now:
            raise FeishuError(
                99991663, "Invalid access token for authorization. Please make a request with "
                "token attached."
            )
        return held[0]

    def _limit(self, key: str, rate: float, burst: int, now: float) -> None:
        bucket = self._buckets.setdefault(key, TokenBucket(rate, burst, now))
        wait = bucket.wait(now)
        if wait > 0:
            reset = str(max(1, math.ceil(wait)))
            raise FeishuError(99991400, "request trigger frequency limit", 429,
                              **{"x-ogw-ratelimit-reset": reset})
        bucket.take(now)

    # -- CardKit -------------------------------------------------------------------------------

    def _cardkit(
        self, name: str, card: Card | None, rest: tuple[str, ...], app_id: str,
        body: dict[str, Any], now: float,
    ) -> Answer:
        if name == "card.create":
            if body.get("type") != "card_json":
                raise FeishuError(10002, "Your request contains an invalid request parameter.")
            card_id = str(next(self._ids))
            try:
                card = Card.parse(card_id, app_id, body.get("data"), now)
            except CardError as exc:
                raise FeishuError(exc.code, exc.msg) from None
            self._check_size(card)
            self._cards[card_id] = card
            return _ok({"card_id": card_id})
        if card is None:
            raise FeishuError(200740, "The card entity does not exist")
        if card.app_id != app_id:
            raise FeishuError(300311, "The current application does not have permission to "
                              "update/use this card")
        if name == "card.content":
            return self._content(card, rest[1], body, now)
        if name == "card.settings":
            return self._settings(card, body, now)
        if name == "card.batch_update":
            return self._batch(card, body, now)
        raise FeishuError(404, "404 page not found", 404)

    def _operation(self, card: Card, body: dict[str, Any], now: float) -> bool:
        """Sequence, uuid and rate checks of one card operation; False: already done."""
        op_uuid = body.get("uuid")
        if isinstance(op_uuid, str) and op_uuid in card.uuids:
            return False
        sequence = body.get("sequence")
        if not isinstance(sequence, int) or isinstance(sequence, bool) or not (
            0 < sequence <= 2**31 - 1
        ):
            raise FeishuError(10002, "Your request contains an invalid request parameter: "
                              "sequence")
        if sequence <= card.last_sequence:
            raise FeishuError(300317, "The sequence number for operating on the card did not "
                              "increment consecutively")
        self._limit(f"card:{card.card_id}", self.knobs.card_rate, self.knobs.card_burst, now)
        card.last_sequence = sequence
        if isinstance(op_uuid, str):
            card.uuids.add(op_uuid)
        return True

    def _content(self, card: Card, element_id: str, body: dict[str, Any], now: float) -> Answer:
        element = card.element(element_id)
        if element is None:
            raise FeishuError(10002, "Your request contains an invalid request parameter: "
                              "element_id")
        if element.get("tag") not in ("markdown", "plain_text"):
            raise FeishuError(300310, "Only update text")
        content = body.get("content")
        if not isinstance(content, str) or not content:
            raise FeishuError(10002, "Your request contains an invalid request parameter: "
                              "content")
        if card.streaming_since is None:
            raise FeishuError(300309, "Card streaming closed")
        if now - card.streaming_since > self.knobs.streaming_timeout:
            card.set_streaming(False, now)
            raise FeishuError(200850, "Card streaming timeout")
        previous = element.get("content", "")
        element["content"] = content
        try:
            self._check_size(card)
            applied = self._operation(card, body, now)
        except FeishuError:
            element["content"] = previous
            raise
        if applied:
            self._show(card, now)
        else:
            element["content"] = previous  # an operation already done changes nothing
        return _ok({})

    def _settings(self, card: Card, body: dict[str, Any], now: float) -> Answer:
        try:
            settings = json.loads(body.get("settings") or "")
            streaming = settings["config"]["streaming_mode"]
        except (ValueError, TypeError, KeyError):
            raise FeishuError(10002, "Your request contains an invalid request parameter: "
                              "settings") from None
        if self._operation(card, body, now):
            card.set_streaming(bool(streaming), now)
            self._show(card, now)
        return _ok({})

    def _batch(self, card: Card, body: dict[str, Any], now: float) -> Answer:
        """``batch_update``: several changes as one operation (one sequence, one rate token)."""
        try:
            actions = json.loads(body.get("actions") or "")
            changes = [_batch_action(card, a) for a in actions]
        except (ValueError, TypeError, KeyError, AttributeError):
            raise FeishuError(10002, "Your request contains an invalid request parameter: "
                              "actions") from None
        saved = json.dumps(card.body)
        for element, content, _ in changes:
            if element is not None:
                element["content"] = content
        try:
            self._check_size(card)
            applied = self._operation(card, body, now)
        except FeishuError:
            card.body = json.loads(saved)
            raise
        if not applied:
            card.body = json.loads(saved)
            return _ok({})
        for element, _, streaming in changes:
            if element is None:
                card.set_streaming(bool(streaming), now)
        self._show(card, now)
        return _ok({})

    def _check_size(self, card: Card) -> None:
        if card_size(card.body) > self.knobs.max_card_bytes:
            raise FeishuError(200860, "Card content exceeds limit.")

    def _show(self, card: Card, now: float) -> None:
        """The chat shows the card's new state (text, streaming flag)."""
        if card.message is None:
            return
        message = self._ledger.find(*card.message)
        if message is None or message.deleted:
            return
        streaming = card.streaming_since is not None
        if message.text != card.text():
            self._ledger.show(message, card.text(), now, streaming=streaming)
        else:
            with self._cond:
                message.extra["streaming"] = streaming
                self._cond.notify_all()

    # -- IM messages ---------------------------------------------------------------------------

    def _send(self, request: Request, body: dict[str, Any], app_id: str, now: float) -> Answer:
        id_type = request.query.get("receive_id_type", "")
        receive_id = body.get("receive_id")
        prefix = _RECEIVE_TYPES.get(id_type)
        if prefix is None or not isinstance(receive_id, str) or not receive_id.startswith(prefix):
            raise FeishuError(99992402, "field validation failed: receive_id / receive_id_type")
        if receive_id in self._removed:
            raise FeishuError(230002, "Bot/User can NOT be out of the chat.")
        msg_uuid = body.get("uuid")
        if isinstance(msg_uuid, str) and msg_uuid in self._messages:
            return _ok(self._message_json(self._messages[msg_uuid], receive_id))
        card = self._card_of(body, app_id)
        self._limit(f"chat:{receive_id}", self.knobs.chat_rate, self.knobs.chat_burst, now)
        message_id = f"om_{uuid.uuid4().hex}"
        card.message = (receive_id, message_id)
        self._chat_of[message_id] = receive_id
        if isinstance(msg_uuid, str):
            self._messages[msg_uuid] = message_id
        self._ledger.add(receive_id, message_id, card.text(), now, card_id=card.card_id,
                         streaming=card.streaming_since is not None)
        return _ok(self._message_json(message_id, receive_id))

    def _card_of(self, body: dict[str, Any], app_id: str) -> Card:
        if body.get("msg_type") != "interactive":
            raise FeishuError(230001, "Your request contains an invalid request parameter: "
                              "this sandbox takes interactive cards only")
        try:
            content = json.loads(body.get("content") or "")
            card = self._cards.get(str(content["data"]["card_id"]))
        except (ValueError, TypeError, KeyError):
            raise FeishuError(230001, "Your request contains an invalid request parameter: "
                              "content") from None
        if card is None or card.app_id != app_id:
            raise FeishuError(200740, "The card entity does not exist")
        if card.message is not None:
            raise FeishuError(230001, "Your request contains an invalid request parameter: "
                              "the card entity was sent already")
        return card

    def _message(self, method: str, message_id: str) -> Answer:
        chat = self._chat_of.get(message_id)
        message = None if chat is None else self._ledger.find(chat, message_id)
        if message is None:
            raise FeishuError(230001, "Your request contains an invalid request parameter: "
                              "message_id")
        if method == "DELETE":
            if message.deleted:
                raise FeishuError(230011, "The message was withdrawn.")
            self._ledger.remove(message)
            return _ok({})
        item = self._message_json(message_id, message.chat_id) | {"deleted": message.deleted}
        return _ok({"items": [item]})

    @staticmethod
    def _message_json(message_id: str, chat_id: str) -> dict[str, Any]:
        return {"message_id": message_id, "chat_id": chat_id, "msg_type": "interactive",
                "sender": {"sender_type": "app"}}


class LarkEmulator(FeishuEmulator):
    """The same API as Lark serves it (only the workers' settings prefix differs)."""

    platform = "lark"


def _batch_action(card: Card, action: dict[str, Any]) -> tuple[dict | None, str, object]:
    """One batch action as (element to change or None, its content, the streaming mode)."""
    params = action["params"]
    if action["action"] == "partial_update_setting":
        return None, "", params["settings"]["config"]["streaming_mode"]
    if action["action"] == "partial_update_element":
        element = card.element(params["element_id"])
        content = params["partial_element"]["content"]
        if element is None or not isinstance(content, str) or not content:
            raise ValueError("element")
        return element, content, None
    raise ValueError(action["action"])


def _call_name(method: str, seg: tuple[str, ...]) -> str:
    """The ledger's name of a call, from its method and path."""
    path = seg[1:]
    if method == "POST" and path == ("auth", "v3", "tenant_access_token", "internal"):
        return "tenant_access_token"
    if path[:3] == ("cardkit", "v1", "cards"):
        if method == "POST" and len(path) == 3:
            return "card.create"
        if method == "PUT" and len(path) == 7 and path[4] == "elements" and path[6] == "content":
            return "card.content"
        if method == "PATCH" and path[4:] == ("settings",):
            return "card.settings"
        if method == "POST" and path[4:] == ("batch_update",):
            return "card.batch_update"
    if path[:3] == ("im", "v1", "messages"):
        if method == "POST" and len(path) == 3:
            return "send"
        if method in ("GET", "DELETE") and len(path) == 4:
            return f"message.{method.lower()}"
    return "/".join(seg)


def _ok(data: dict[str, Any]) -> Answer:
    return 200, {"code": 0, "msg": "success", "data": data}, {}
