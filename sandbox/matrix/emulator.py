"""``MatrixEmulator``: the Matrix client-server API calls a bot needs, on a loopback port.

Routes (``/_matrix/client/v3/…``, ``Authorization: Bearer <access token>``):

- ``PUT rooms/{roomId}/send/{eventType}/{txnId}`` -> ``{"event_id"}``. A repeated txn id of the
  same access token returns the first event id and changes nothing (the spec's idempotency).
  ``m.replace`` relations edit the original event: the ledger shows ``m.new_content``.
- ``PUT rooms/{roomId}/redact/{eventId}/{txnId}`` -> ``{"event_id"}``: the message is deleted.
- ``GET rooms/{roomId}/event/{eventId}``: the event (empty content once redacted).
- ``GET account/whoami``.

Errors are ``{"errcode", "error"}``: 401 ``M_MISSING_TOKEN``/``M_UNKNOWN_TOKEN``, 403
``M_FORBIDDEN`` (not in the room), 404 ``M_NOT_FOUND``/``M_UNRECOGNIZED``, 400
``M_BAD_JSON``/``M_NOT_JSON``/``M_INVALID_PARAM``, 413 ``M_TOO_LARGE`` (an event's JSON over
``max_event_bytes``), 429 ``M_LIMIT_EXCEEDED`` with ``retry_after_ms`` (per-room token bucket).
The ledger's text of a message is what a client shows: the visible text of ``formatted_body``
when the content is HTML, else ``body``.
"""

from __future__ import annotations

import html.parser
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from sandbox.loopback import FaultKnobs
from sandbox.matrix.loopback import Answer, LoopbackEmulator, Request
from sandbox.telegram.flood import TokenBucket

__all__ = ["MatrixEmulator", "MatrixKnobs"]

#: the test bot's user id
USER_ID = "@tokenrelay:sandbox.local"
_ROOM = re.compile(r"^![^:\s]+:\S+$")
_PREFIX = ("_matrix", "client", "v3")


@dataclass(frozen=True)
class MatrixKnobs(FaultKnobs):
    """Every setting ``configure`` can change at runtime (the fault knobs included)."""

    access_token: str | None = None  #: the only token accepted; None accepts any non-empty one
    room_rate: float = 50.0  #: events per second per room
    room_burst: int = 50  #: bucket size per room
    max_event_bytes: int = 65536  #: an event's JSON size limit (Synapse's)

    def validated(self) -> MatrixKnobs:
        super().validated()
        if self.room_rate <= 0 or self.room_burst < 1 or self.max_event_bytes < 256:
            raise ValueError("room_rate > 0, room_burst >= 1 and max_event_bytes >= 256")
        return self


@dataclass
class _Event:
    event_id: str
    room_id: str
    sender: str
    type: str
    content: dict[str, Any]
    redacted: bool = False


class MatrixError(Exception):
    """A Matrix error answer."""

    def __init__(self, status: int, errcode: str, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.answer: Answer = (status, {"errcode": errcode, "error": error, **extra}, {})


class MatrixEmulator(LoopbackEmulator):
    """A Matrix homeserver on a loopback port, with fault knobs and a ledger per room."""

    knobs_class = MatrixKnobs
    platform = "matrix"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **knobs: Any) -> None:
        super().__init__(host, port, **knobs)
        self.reset_platform()

    def reset_platform(self) -> None:
        self._events: dict[str, _Event] = {}
        self._txns: dict[tuple[str, str], str] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._forbidden: set[str] = set()
        self._revoked: set[str] = set()

    # -- test controls -------------------------------------------------------------------------

    def tokenrelay_env(self) -> dict[str, str]:
        """TOKENRELAY_* variables pointing the default account at this homeserver."""
        return {
            "TOKENRELAY_MATRIX_HOMESERVER": self.base_url,
            "TOKENRELAY_MATRIX_ACCESS_TOKEN": self.knobs.access_token or "syt_sandbox_token",
        }

    def forbid(self, room_id: str) -> None:
        """The bot is kicked from the room: further sends answer 403 M_FORBIDDEN."""
        with self._cond:
            self._forbidden.add(room_id)

    def revoke(self, token: str) -> None:
        """The access token is logged out: it answers 401 M_UNKNOWN_TOKEN from now on."""
        with self._cond:
            self._revoked.add(token)

    def redact(self, room_id: str, event_id: str) -> None:
        """The user deletes a message; KeyError if it isn't there."""
        with self._cond:
            self.take_down(room_id, event_id)
            self._events[event_id].redacted = True

    def events(self, room_id: str) -> list[dict[str, Any]]:
        """Every m.room.message event of the room (edits included), in order."""
        with self._cond:
            return [
                {"event_id": e.event_id, "content": dict(e.content), "redacted": e.redacted}
                for e in self._events.values()
                if e.room_id == room_id and e.type == "m.room.message"
            ]

    # -- serving -------------------------------------------------------------------------------

    def fault_answer(self) -> Answer:
        return 500, {"errcode": "M_UNKNOWN", "error": "Internal server error"}, {}

    def retry_after(self, answer: Answer) -> float | None:
        ms = answer[1].get("retry_after_ms")
        return None if ms is None else ms / 1000.0

    def serve(self, request: Request, now: float) -> tuple[str, str | None, Answer]:
        seg = request.segments
        room = seg[4] if len(seg) > 4 and seg[3] == "rooms" else None
        name = seg[5] if room is not None and len(seg) > 5 else "/".join(seg[3:])
        try:
            if seg[:3] != _PREFIX:
                raise MatrixError(404, "M_UNRECOGNIZED", "Unrecognized request")
            token = self._authorise(request)
            if request.bad_json:
                raise MatrixError(400, "M_NOT_JSON", "Content not JSON.")
            if request.method == "GET" and seg[3:] == ("account", "whoami"):
                return name, None, (200, {"user_id": USER_ID}, {})
            if room is None or len(seg) < 7:
                raise MatrixError(404, "M_UNRECOGNIZED", "Unrecognized request")
            self._check_room(room)
            if request.method == "PUT" and name == "send" and len(seg) == 8:
                return name, room, self._send(room, seg[6], seg[7], token, request.body, now)
            if request.method == "PUT" and name == "redact" and len(seg) == 8:
                return name, room, self._redact(room, seg[6], seg[7], token, now)
            if request.method == "GET" and name == "event" and len(seg) == 7:
                return name, room, self._get_event(room, seg[6])
            raise MatrixError(404, "M_UNRECOGNIZED", "Unrecognized request")
        except MatrixError as exc:
            return name, room, exc.answer

    def _authorise(self, request: Request) -> str:
        token = request.bearer() or request.query.get("access_token")
        if not token:
            raise MatrixError(401, "M_MISSING_TOKEN", "Missing access token")
        wanted = self.knobs.access_token
        if token in self._revoked or (wanted is not None and token != wanted):
            raise MatrixError(401, "M_UNKNOWN_TOKEN", "Unknown access token", soft_logout=False)
        return token

    def _check_room(self, room: str) -> None:
        if not _ROOM.match(room):
            raise MatrixError(400, "M_INVALID_PARAM", f"{room!r} is not a valid room id")
        if room in self._forbidden:
            raise MatrixError(403, "M_FORBIDDEN", f"User {USER_ID} not in room {room}")

    def _take(self, room: str, now: float) -> None:
        k = self.knobs
        bucket = self._buckets.setdefault(room, TokenBucket(k.room_rate, k.room_burst, now))
        wait = bucket.wait(now)
        if wait > 0:
            ms = max(1, int(wait * 1000) + 1)
            error = MatrixError(429, "M_LIMIT_EXCEEDED", "Too Many Requests", retry_after_ms=ms)
            error.answer[2]["Retry-After"] = str(math.ceil(ms / 1000))
            raise error
        bucket.take(now)

    def _new_event(self, room: str, etype: str, content: dict[str, Any]) -> _Event:
        event = _Event(f"${len(self._events) + 1}x{self.port}:sandbox.local", room, USER_ID,
                       etype, content)
        self._events[event.event_id] = event
        return event

    def _send(self, room: str, etype: str, txn: str, token: str, body: Any, now: float) -> Answer:
        done = self._txns.get((token, txn))
        if done is not None:
            return 200, {"event_id": done}, {}
        if not isinstance(body, dict):
            raise MatrixError(400, "M_BAD_JSON", "Content must be a JSON object")
        event_json = {"type": etype, "room_id": room, "sender": USER_ID, "content": body}
        if len(json.dumps(event_json, ensure_ascii=False).encode()) > self.knobs.max_event_bytes:
            raise MatrixError(413, "M_TOO_LARGE", "event too large")
        target = self._edit_target(room, body) if etype == "m.room.message" else None
        if etype == "m.room.message" and not isinstance(body.get("body"), str):
            raise MatrixError(400, "M_BAD_JSON", "'body' must be a string")
        self._take(room, now)
        event = self._new_event(room, etype, body)
        self._txns[(token, txn)] = event.event_id
        if etype == "m.room.message":
            if target is None:
                self._ledger.add(room, event.event_id, _shown(body), now, **_details(body))
            else:
                message = self._ledger.find(room, target.event_id)
                if message is not None and not message.deleted:
                    new = body["m.new_content"]
                    self._ledger.show(message, _shown(new), now, **_details(new))
        return 200, {"event_id": event.event_id}, {}

    def _edit_target(self, room: str, body: dict[str, Any]) -> _Event | None:
        """The event an ``m.replace`` edits (validated), or None for a new message."""
        relates = body.get("m.relates_to")
        if not isinstance(relates, dict) or relates.get("rel_type") != "m.replace":
            return None
        target = self._events.get(str(relates.get("event_id")))
        if target is None or target.room_id != room:
            raise MatrixError(400, "M_BAD_JSON", "m.replace target not found in this room")
        if target.sender != USER_ID or "m.relates_to" in target.content:
            raise MatrixError(400, "M_BAD_JSON", "cannot edit this event")
        if not isinstance(body.get("m.new_content"), dict) or not isinstance(
            body["m.new_content"].get("body"), str
        ):
            raise MatrixError(400, "M_BAD_JSON", "m.replace needs m.new_content with a body")
        return target

    def _redact(self, room: str, event_id: str, txn: str, token: str, now: float) -> Answer:
        done = self._txns.get((token, txn))
        if done is not None:
            return 200, {"event_id": done}, {}
        target = self._events.get(event_id)
        if target is None or target.room_id != room:
            raise MatrixError(404, "M_NOT_FOUND", "Event not found")
        self._take(room, now)
        target.redacted = True
        message = self._ledger.find(room, event_id)
        if message is not None:
            self._ledger.remove(message)
        event = self._new_event(room, "m.room.redaction", {"redacts": event_id})
        self._txns[(token, txn)] = event.event_id
        return 200, {"event_id": event.event_id}, {}

    def _get_event(self, room: str, event_id: str) -> Answer:
        event = self._events.get(event_id)
        if event is None or event.room_id != room:
            raise MatrixError(404, "M_NOT_FOUND", "Event not found")
        payload: dict[str, Any] = {
            "event_id": event.event_id, "room_id": room, "sender": event.sender,
            "type": event.type, "content": {} if event.redacted else event.content,
            "unsigned": {},
        }
        if event.redacted:
            payload["unsigned"]["redacted_because"] = {"type": "m.room.redaction"}
        return 200, payload, {}


def _details(content: dict[str, Any]) -> dict[str, Any]:
    return {"body": content.get("body"), "formatted_body": content.get("formatted_body")}


def _shown(content: dict[str, Any]) -> str:
    """What a client shows for a message content."""
    formatted = content.get("formatted_body")
    if content.get("format") == "org.matrix.custom.html" and isinstance(formatted, str):
        return html_text(formatted)
    return str(content.get("body", ""))


class _TextOf(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_text(markup: str) -> str:
    """The visible text of an HTML fragment (tags dropped, entities decoded)."""
    parser = _TextOf()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)
