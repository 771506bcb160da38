"""Plumbing shared by the JSON emulators (Matrix, Feishu/Lark): a threaded loopback HTTP shell,
fault injection, runtime knobs, and a ledger of what each chat shows.

An emulator subclasses :class:`LoopbackEmulator`, names its knobs dataclass (which must carry
the fault knobs of :class:`FaultKnobs`) and implements ``serve(request) -> Answer`` and
``fault_answer() -> Answer`` (its platform's 500). Everything ``serve`` does runs under the
ledger's lock, so the platform logic needs no locking of its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from sandbox.telegram.server import _Server as TelegramServer

__all__ = [
    "Answer",
    "ChatLedger",
    "FaultKnobs",
    "LoopbackEmulator",
    "Request",
    "SandboxCall",
    "ShownMessage",
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
class FaultKnobs:
    """The fault knobs every emulator has (its own knobs dataclass repeats these fields)."""

    latency: float = 0.0  #: seconds added to every request
    error_rate: float = 0.0  #: fraction of requests answered 500 without processing
    drop_rate: float = 0.0  #: fraction of requests dropped without processing
    drop_after_rate: float = 0.0  #: fraction of requests processed, then dropped
    seed: int | None = None  #: seed of the fault RNG


def validate_faults(knobs: Any) -> None:
    """ValueError when a fault knob is out of range."""
    for name in ("error_rate", "drop_rate", "drop_after_rate"):
        if not 0.0 <= getattr(knobs, name) <= 1.0:
            raise ValueError(f"{name} must be within [0, 1]")
    if knobs.latency < 0:
        raise ValueError("latency must be >= 0")


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


class ChatLedger:
    """Messages per chat and every call; all access under ``cond``, notified on every change."""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.RLock())
        self._chats: dict[str, dict[str, ShownMessage]] = {}
        self._calls: list[SandboxCall] = []

    def clear(self) -> None:
        with self.cond:
            self._chats.clear()
            self._calls.clear()
            self.cond.notify_all()

    def add(self, chat_id: str, message_id: str, text: str, now: float, **extra: Any) -> None:
        with self.cond:
            self._chats.setdefault(chat_id, {})[message_id] = ShownMessage(
                chat_id, message_id, text, created_at=now, updated_at=now,
                history=[(now, text)], extra=dict(extra),
            )
            self.cond.notify_all()

    def find(self, chat_id: str, message_id: str) -> ShownMessage | None:
        """The live message (deleted ones too), or None."""
        with self.cond:
            return self._chats.get(chat_id, {}).get(message_id)

    def show(self, message: ShownMessage, text: str, now: float, **extra: Any) -> None:
        """The message now shows ``text`` (an edit)."""
        with self.cond:
            message.text = text
            message.edits += 1
            message.updated_at = now
            message.history.append((now, text))
            message.extra.update(extra)
            self.cond.notify_all()

    def remove(self, message: ShownMessage) -> None:
        with self.cond:
            message.deleted = True
            self.cond.notify_all()

    def record(self, call: SandboxCall) -> None:
        with self.cond:
            self._calls.append(call)
            self.cond.notify_all()

    def messages(self, chat_id: str, include_deleted: bool = False) -> list[ShownMessage]:
        """Copies of the chat's messages in the order they were sent."""
        with self.cond:
            return [
                replace(m, history=list(m.history), extra=dict(m.extra))
                for m in self._chats.get(chat_id, {}).values()
                if include_deleted or not m.deleted
            ]

    def calls(self) -> list[SandboxCall]:
        with self.cond:
            return list(self._calls)

    def snapshot(self) -> dict[str, Any]:
        """The JSON view of ``ledger()`` (see sandbox/registry.py)."""
        with self.cond:
            chats = {
                chat: [
                    {"message_id": m.message_id, "text": m.text, "edits": m.edits,
                     "deleted": m.deleted}
                    for m in self.messages(chat, include_deleted=True)
                ]
                for chat in self._chats
            }
            counts = Counter((c.method, c.status) for c in self._calls)
        return {
            "chats": chats,
            "calls": [
                {"method": method, "status": status, "count": n}
                for (method, status), n in sorted(counts.items())
            ],
            "total_calls": sum(counts.values()),
        }


class LoopbackEmulator:
    """Start/stop, faults, knobs, ledger access and control paths of a JSON emulator."""

    #: the knobs dataclass (frozen, with the fields of FaultKnobs and a ``validated()``)
    knobs_class: ClassVar[type]
    #: the platform's name, for thread names and messages
    platform: ClassVar[str] = "sandbox"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **knobs: Any) -> None:
        self.host = host
        self.port = port
        self._knobs = self.knobs_class(**knobs).validated()
        self._ledger = ChatLedger()
        self._cond = self._ledger.cond
        self._rng = random.Random(self._knobs.seed)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

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

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
            name=f"{self.platform}-sandbox:{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return f"http://{self.host}:{self.port}"

    # -- control -------------------------------------------------------------------------------

    @property
    def knobs(self) -> Any:
        return self._knobs

    def configure(self, **knobs: Any) -> None:
        """Change knobs at runtime (``seed`` also reseeds the fault RNG)."""
        unknown = set(knobs) - {f.name for f in fields(self.knobs_class)}
        if unknown:
            raise TypeError(f"unknown knobs: {', '.join(sorted(unknown))}")
        with self._cond:
            self._knobs = replace(self._knobs, **knobs).validated()
            if "seed" in knobs:
                self._rng.seed(self._knobs.seed)

    def reset(self) -> None:
        """Forget messages, calls and the platform's state (knobs and RNG stay)."""
        with self._cond:
            self._ledger.clear()
            self.reset_platform()

    # -- ledger --------------------------------------------------------------------------------

    def messages(self, chat_id: str) -> list[ShownMessage]:
        """Copies of the chat's visible (not deleted) messages, in the order sent."""
        return self._ledger.messages(str(chat_id))

    def texts(self, chat_id: str) -> list[str]:
        return [m.text for m in self.messages(chat_id)]

    @property
    def calls(self) -> list[SandboxCall]:
        return self._ledger.calls()

    def count(self, method: str | None = None, status: int | None = None,
              chat_id: str | None = None) -> int:
        """How many calls match all the given filters."""
        return sum(
            1 for c in self.calls
            if (method is None or c.method == method)
            and (status is None or c.status == status)
            and (chat_id is None or c.chat_id == chat_id)
        )

    def wait_for(self, predicate: Callable[[Any], Any], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` holds (re-checked on every ledger change) or timeout."""
        with self._cond:
            return bool(self._cond.wait_for(lambda: predicate(self), timeout))

    def ledger(self) -> dict[str, Any]:
        return self._ledger.snapshot()

    # -- serving -------------------------------------------------------------------------------

    def handle(self, request: Request) -> Answer | None:
        """Faults, then the platform's answer, recorded; None drops the connection."""
        arrival = time.monotonic()
        with self._cond:
            knobs = self._knobs
            draws = self._rng.random(), self._rng.random(), self._rng.random()
        fault = _fault(knobs, *draws)
        if knobs.latency > 0:
            time.sleep(knobs.latency)
        if request.path.startswith("_sandbox/"):
            return self._control(request)
        if fault in ("drop", "error"):
            answer = self.fault_answer()
            self._ledger.record(SandboxCall(arrival, request.path, None,
                                            0 if fault == "drop" else answer[0], None, fault))
            return None if fault == "drop" else answer
        with self._cond:
            name, chat, answer = self.serve(request, time.monotonic())
            code = None if answer[0] == 200 else _error_code(answer[1])
            self._ledger.record(SandboxCall(
                arrival, name, chat, 0 if fault else answer[0], code, fault,
                self.retry_after(answer),
            ))
        return None if fault else answer

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


def _fault(knobs: Any, drop: float, error: float, drop_after: float) -> str | None:
    if drop < knobs.drop_rate:
        return "drop"
    if error < knobs.error_rate:
        return "error"
    if drop_after < knobs.drop_after_rate:
        return "drop_after"
    return None


def _error_code(body: dict[str, Any]) -> str | int | None:
    return body.get("errcode") or body.get("code") or None


# --------------------------------------------------------------------------------------------
# HTTP shell
# --------------------------------------------------------------------------------------------


class _Server(TelegramServer):
    """The Telegram sandbox's server (it cuts open connections on stop), with a JSON handler."""

    def __init__(self, address: tuple[str, int], emulator: LoopbackEmulator) -> None:
        super().__init__(address, emulator)  # type: ignore[arg-type]
        self.RequestHandlerClass = _Handler


class _Handler(BaseHTTPRequestHandler):
    """Reads one JSON request, hands it to the emulator, writes (or drops) the answer."""

    protocol_version = "HTTP/1.1"
    server_version = "tokenrelay-sandbox"
    timeout = 60
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the ledger is the log."""

    def _handle(self) -> None:
        url = urlsplit(self.path)
        size = int(self.headers.get("Content-Length") or 0)
        if size > MAX_BODY:
            self.close_connection = True
            self._reply((413, {"error": "Request Entity Too Large"}, {}))
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
        try:
            answer = self.server.emulator.handle(request)
        except Exception:
            log.exception("sandbox failed on %s %s", self.command, url.path)
            answer = self.server.emulator.fault_answer()
        if answer is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._reply(answer)

    def _reply(self, answer: Answer) -> None:
        status, payload, headers = answer
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
