"""The HTTP shell and fault injection shared by the Slack and Discord emulators.

A ``LoopbackEmulator`` serves JSON over HTTP/1.1 on a free 127.0.0.1 port. Each request is
first given a fault (``drop``: connection closed unanswered and not processed; ``error``:
500 unprocessed; ``drop_after``: processed, then the connection closed unanswered, i.e. a
lost answer), then handed to the subclass's ``route``. Messages and calls go to the Telegram
emulator's ``Ledger`` (one ledger shape for every platform).
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

from sandbox.telegram.ledger import Ledger, SandboxCall, SandboxMessage

__all__ = ["Answer", "BaseKnobs", "LoopbackEmulator", "Request"]

#: largest request body accepted, in bytes
MAX_BODY = 1 << 20


@dataclass(frozen=True)
class BaseKnobs:
    """Fault knobs every loopback emulator has."""

    token: str | None = None  #: the only token accepted; None accepts any well-formed one
    latency: float = 0.0  #: seconds added to every request
    error_rate: float = 0.0  #: fraction of requests answered 500 without processing
    drop_rate: float = 0.0  #: fraction of requests dropped without processing
    drop_after_rate: float = 0.0  #: fraction of requests processed, then dropped (lost answer)
    seed: int | None = None  #: seed of the fault RNG

    def validated(self) -> Self:
        for name in ("error_rate", "drop_rate", "drop_after_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if self.latency < 0:
            raise ValueError("latency must be >= 0")
        return self


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, emulator: LoopbackEmulator) -> None:
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        super().__init__((emulator.host, 0), _Handler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.lock:
                self.connections.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a dropped connection is a fault we injected."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 60
    server: _Server

    def do_POST(self) -> None:
        self._handle()

    do_GET = do_PATCH = do_DELETE = do_PUT = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the ledger is the log."""

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
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, payload, extra = answer
        data = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class LoopbackEmulator:
    """Serving, faults, knobs and the ledger; subclasses answer ``route`` and name ``Knobs``."""

    Knobs: type[BaseKnobs] = BaseKnobs
    #: JSON error body of an injected 500
    server_error: ClassVar[dict[str, Any]] = {"ok": False, "error": "internal_error"}

    def __init__(self, host: str = "127.0.0.1", **knobs: Any) -> None:
        self.host = host
        self._knobs = self.Knobs(**knobs).validated()
        self._ledger = Ledger()
        self._cond = self._ledger.cond
        self._rng = random.Random(self._knobs.seed)
        self._server: _Server | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self._server = _Server(self)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True,
            name=f"{type(self).__name__}:{self._server.server_address[1]}",
        ).start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with server.lock:
            for connection in list(server.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    # -- control -----------------------------------------------------------------------------

    @property
    def knobs(self) -> Any:
        return self._knobs

    def configure(self, **knobs: Any) -> None:
        """Change knobs at runtime (``seed`` also reseeds the fault RNG)."""
        unknown = set(knobs) - {f.name for f in fields(self.Knobs)}
        if unknown:
            raise TypeError(f"unknown knobs: {', '.join(sorted(unknown))}")
        with self._cond:
            self._knobs = replace(self._knobs, **knobs).validated()
            if "seed" in knobs:
                self._rng.seed(self._knobs.seed)
            self._cond.notify_all()

    # -- ledger ------------------------------------------------------------------------------

    def messages(self, chat_id: str) -> list[SandboxMessage]:
        """Copies of the chat's visible (not deleted) messages, oldest first; ``history``
        holds every text each one showed."""
        return self._ledger.messages(str(chat_id))

    def texts(self, chat_id: str) -> list[str]:
        return [m.text for m in self.messages(chat_id)]

    @property
    def calls(self) -> list[SandboxCall]:
        return self._ledger.calls()

    def count(
        self, method: str | None = None, status: int | None = None, chat_id: str | None = None,
        fault: str | None = None,
    ) -> int:
        """How many calls match all the given filters."""
        return sum(
            1 for c in self.calls
            if (method is None or c.method == method) and (status is None or c.status == status)
            and (chat_id is None or c.chat_id == str(chat_id))
            and (fault is None or c.fault == fault)
        )

    def wait_for(self, predicate: Callable[[Any], Any], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` holds (re-checked on every ledger change)."""
        with self._cond:
            return bool(self._cond.wait_for(lambda: predicate(self), timeout))

    def ledger(self) -> dict[str, Any]:
        """The JSON view of what every chat shows and of every call."""
        return self._ledger.snapshot()

    def delete(self, chat_id: str, message_id: int) -> None:
        """The user deletes a message (``message_id`` as the ledger numbers it)."""
        with self._cond:
            message = self._ledger.find(str(chat_id), int(message_id))
            if message is None:
                raise KeyError((chat_id, message_id))
            self._ledger.remove(message)

    # -- serving -----------------------------------------------------------------------------

    def serve(
        self, method: str, path: str, headers: dict[str, str], body: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any] | None, dict[str, str]] | None:
        """Answer one request; None means: drop the connection without an answer."""
        arrival = time.monotonic()
        with self._cond:
            knobs = self._knobs
            draws = self._rng.random(), self._rng.random(), self._rng.random()
        fault = (
            "drop" if draws[0] < knobs.drop_rate else "error" if draws[1] < knobs.error_rate
            else "drop_after" if draws[2] < knobs.drop_after_rate else None
        )
        if knobs.latency:
            time.sleep(knobs.latency)
        bare = SandboxCall(arrival, path, None, None, 0, False, None, None, None, fault)
        if fault == "drop":
            self._ledger.record(replace(bare, error="connection dropped"))
            return None
        if fault == "error":
            self._ledger.record(replace(bare, status=500, error="injected"))
            return 500, self.server_error, {}
        with self._cond:
            answer = self.route(Request(method, path.split("?", 1)[0], headers, body or {},
                                        time.monotonic()), bare)
            self._ledger.record(replace(answer.call, status=0) if fault else answer.call)
        return None if fault else (answer.status, answer.payload, answer.headers or {})

    def route(self, request: Request, call: SandboxCall) -> Answer:
        """Answer one request (the ledger's lock is held)."""
        raise NotImplementedError
