"""The JSON dialect the Matrix and Feishu/Lark emulators share, on ``sandbox.loopback``: a
request parsed into path segments, answers as ``(status, body, headers)``, a ledger keyed by the
platform's string ids, and the ``/_sandbox/`` control paths.

An emulator subclasses :class:`LoopbackEmulator`, names its knobs dataclass (extending
:class:`FaultKnobs`) and implements ``serve(request) -> Answer`` and ``fault_answer() ->
Answer`` (its platform's 500). Everything ``serve`` does runs under the ledger's lock, so the
platform logic needs no locking of its own.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

from sandbox.ledger import ChatLedger as SharedLedger
from sandbox.loopback import Emulator, FaultKnobs, JsonHandler, LoopbackServer, validate_faults

__all__ = [
    "Answer",
    "ChatLedger",
    "FaultKnobs",
    "LoopbackEmulator",
    "Request",
    "SandboxCall",
    "ShownMessage",
    "validate_faults",
]

log = logging.getLogger(__name__)

#: bytes; larger request bodies are answered 413
MAX_BODY = 1 << 21

#: (HTTP status, JSON body, extra headers)
Answer = tuple[int, dict[str, Any], dict[str, str]]


@dataclass(frozen=True)
class Request:
    """One HTTP request as the platform logic sees it."""

    method: str
    path: str  #: percent-decoded path segments joined by "/" (ids may contain "!" ":" "$")
    segments: tuple[str, ...]  #: the path's decoded segments
    query: dict[str, str]
    headers: dict[str, str]  #: lower-case names
    body: Any  #: the parsed JSON body, None when empty
    bad_json: bool = False  #: the body was not JSON

    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:].strip() if auth[:7].lower() == "bearer " else None


@dataclass(frozen=True)
class SandboxCall:
    """One request and how it was answered."""

    t: float  #: time.monotonic() at arrival
    method: str  #: the platform's name for the call ("send", "content", …)
    chat_id: str | None
    status: int  #: HTTP status; 0 when the connection was dropped
    code: str | int | None  #: the platform's error code (errcode, code), None on success
    fault: str | None = None  #: "error", "drop" or "drop_after" when a fault was injected
    retry_after: float | None = None  #: seconds a rate-limit answer asked the client to wait


@dataclass
class ShownMessage:
    """One message as the chat shows it, with every text it showed."""

    chat_id: str
    message_id: str
    text: str  #: what the chat shows now
    edits: int = 0
    deleted: bool = False
    created_at: float = 0.0  #: time.monotonic() when sent
    updated_at: float = 0.0  #: time.monotonic() of the last change
    history: list[tuple[float, str]] = field(default_factory=list)  #: (time, text), from the send
    extra: dict[str, Any] = field(default_factory=dict)  #: platform details (formatted body…)


class ChatLedger(SharedLedger[ShownMessage, SandboxCall]):
    """Messages per chat (by the platform's string ids) and every call."""

    def add(self, chat_id: str, message_id: str, text: str, now: float, **extra: Any) -> None:
        self.keep(chat_id, ShownMessage(
            chat_id, message_id, text, created_at=now, updated_at=now,
            history=[(now, text)], extra=dict(extra),
        ))

    def find(self, chat_id: str, message_id: str) -> ShownMessage | None:
        """The live message (deleted ones too), or None."""
        return self.stored(chat_id, message_id)

    def show(self, message: ShownMessage, text: str, now: float, **extra: Any) -> None:
        """The message now shows ``text`` (an edit)."""
        with self.cond:
            message.extra.update(extra)
            self.shown(message, text, now)

    def copy(self, message: ShownMessage) -> ShownMessage:
        return replace(message, history=list(message.history), extra=dict(message.extra))


class _Handler(JsonHandler):
    """Reads one JSON request, hands it to the emulator, writes (or drops) the answer."""

    server: LoopbackServer

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        url = urlsplit(self.path)
        size = int(self.headers.get("Content-Length") or 0)
        if size > MAX_BODY:
            self.close_connection = True
            self.send_json(413, {"error": "Request Entity Too Large"})
            return
        raw = self.rfile.read(size) if size > 0 else b""
        body, bad = None, False
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                bad = True
        segments = tuple(unquote(s) for s in url.path.strip("/").split("/"))
        request = Request(
            method=self.command,
            path="/".join(segments),
            segments=segments,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            bad_json=bad,
        )
        emulator: LoopbackEmulator = self.server.emulator
        try:
            answer = emulator.handle(request)
        except Exception:
            log.exception("sandbox failed on %s %s", self.command, url.path)
            answer = emulator.fault_answer()
        if answer is None:
            self.drop()
        else:
            self.send_json(*answer)


class LoopbackEmulator(Emulator):
    """Faults, the platform's answer, recording and control paths of a JSON emulator."""

    #: the knobs dataclass (frozen, extends FaultKnobs)
    knobs_class: ClassVar[type[FaultKnobs]]
    handler_class = _Handler
    _ledger: ChatLedger

    def new_ledger(self) -> ChatLedger:
        return ChatLedger()

    # -- what a platform implements ------------------------------------------------------------

    def serve(self, request: Request, now: float) -> tuple[str, str | None, Answer]:
        """Answer one API request: ``(call name, chat id, answer)``; runs under the lock."""
        raise NotImplementedError

    def fault_answer(self) -> Answer:
        """The platform's answer to an injected server error."""
        raise NotImplementedError

    def reset_platform(self) -> None:
        """Forget the platform's own state (rate buckets, tokens…) on ``reset()``."""

    def retry_after(self, answer: Answer) -> float | None:
        """Seconds a rate-limit answer asks the client to wait (``Retry-After``), else None."""
        value = answer[2].get("Retry-After")
        return None if value is None else float(value)

    # -- control -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget messages, calls and the platform's state (knobs and RNG stay)."""
        with self._cond:
            self._ledger.clear()
            self.reset_platform()

    # -- serving -------------------------------------------------------------------------------

    def handle(self, request: Request) -> Answer | None:
        """Faults, then the platform's answer, recorded; None drops the connection."""
        arrival, fault = self.arrive()
        if request.path.startswith("_sandbox/"):
            return self._control(request)
        error = self.fault_answer()
        unanswered = SandboxCall(arrival, request.path, None, 0, None, fault)

        def process() -> tuple[SandboxCall, Answer]:
            name, chat, answer = self.serve(request, time.monotonic())
            code = None if answer[0] == 200 else _error_code(answer[1])
            call = SandboxCall(arrival, name, chat, answer[0], code, fault,
                               self.retry_after(answer))
            return call, answer

        return self.respond(fault, unanswered, (replace(unanswered, status=error[0]), error),
                            process)

    def _control(self, request: Request) -> Answer:
        """``GET _sandbox/ledger``, ``POST _sandbox/reset``, ``POST _sandbox/configure``."""
        action = request.path.removeprefix("_sandbox/")
        try:
            if request.method == "GET" and action == "ledger":
                return 200, self.ledger(), {}
            if request.method == "POST" and action == "reset":
                self.reset()
                return 200, {}, {}
            if request.method == "POST" and action == "configure":
                self.configure(**(request.body or {}))
                return 200, {}, {}
        except (TypeError, ValueError) as exc:
            return 400, {"error": str(exc)}, {}
        return 404, {"error": "not found"}, {}


def _error_code(body: dict[str, Any]) -> str | int | None:
    return body.get("errcode") or body.get("code") or None
