"""The REST dialect the Slack and Discord emulators share, on ``sandbox.loopback``.

A request is its method, path (without the query), headers and JSON body; the subclass's
``route`` answers it with an :class:`Answer` that carries the call the ledger records.
Messages and calls use the Telegram emulator's ledger shapes (``SandboxMessage``,
``SandboxCall``: one ledger shape for these platforms), numbered per chat.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from sandbox.loopback import Emulator, FaultKnobs, JsonHandler
from sandbox.telegram.ledger import Ledger, SandboxCall

__all__ = ["Answer", "BaseKnobs", "LoopbackEmulator", "Request"]

#: largest request body read, in bytes (the rest is not read: the JSON is then invalid)
MAX_BODY = 1 << 20


@dataclass(frozen=True)
class BaseKnobs(FaultKnobs):
    """Fault knobs and the token every REST emulator has."""

    token: str | None = None  #: the only token accepted; None accepts any well-formed one


@dataclass(frozen=True)
class Request:
    method: str  #: HTTP method
    path: str
    headers: dict[str, str]  #: lower-case names
    body: dict[str, Any]
    now: float  #: time.monotonic()


@dataclass
class Answer:
    """How the platform answered; ``call`` is what the ledger records about it."""

    status: int
    payload: dict[str, Any] | None
    call: SandboxCall
    headers: dict[str, str] | None = None


class _Handler(JsonHandler):
    content_type = "application/json; charset=utf-8"

    def do_POST(self) -> None:
        self._handle()

    do_GET = do_PATCH = do_DELETE = do_PUT = do_POST

    def _handle(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(size, MAX_BODY)) if size else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        answer = self.server.emulator.serve(self.command, self.path, headers, body)
        if answer is None:
            self.drop()
        else:
            self.send_json(*answer)


class LoopbackEmulator(Emulator):
    """Faults and recording of a REST emulator; subclasses answer ``route`` and name
    ``knobs_class``."""

    knobs_class: ClassVar[type[FaultKnobs]] = BaseKnobs
    handler_class = _Handler
    #: JSON error body of an injected 500
    server_error: ClassVar[dict[str, Any]] = {"ok": False, "error": "internal_error"}
    _ledger: Ledger

    def new_ledger(self) -> Ledger:
        return Ledger()

    def delete(self, chat_id: str, message_id: int) -> None:
        """The user deletes a message (``message_id`` as the ledger numbers it)."""
        self.take_down(self.chat_key(chat_id), int(message_id))

    def serve(
        self, method: str, path: str, headers: dict[str, str], body: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any] | None, dict[str, str]] | None:
        """Answer one request; None means: drop the connection without an answer."""
        arrival, fault = self.arrive()
        bare = SandboxCall(arrival, path, None, None, 0, False, None, None, None, fault)

        def process() -> tuple[SandboxCall, tuple[int, dict[str, Any] | None, dict[str, str]]]:
            request = Request(method, path.split("?", 1)[0], headers, body or {},
                              time.monotonic())
            answer = self.route(request, bare)
            return answer.call, (answer.status, answer.payload, answer.headers or {})

        return self.respond(
            fault,
            dropped=replace(bare, error="connection dropped"),
            failed=(replace(bare, status=500, error="injected"), (500, self.server_error, {})),
            process=process,
        )

    def route(self, request: Request, call: SandboxCall) -> Answer:
        """Answer one request (the ledger's lock is held)."""
        raise NotImplementedError
