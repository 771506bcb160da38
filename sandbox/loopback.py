"""What every loopback emulator shares: the threaded HTTP server, fault knobs and their draw,
and the emulator's lifecycle, knobs and ledger reads.

An emulator subclasses :class:`Emulator` and names its ``knobs_class`` (a frozen dataclass
extending :class:`FaultKnobs`), its ``handler_class`` (a :class:`JsonHandler` that reads its
platform's requests) and its ledger (``new_ledger``). Each request is given a fault first
(``drop``: the connection is closed unanswered and nothing is processed; ``error``: a 500,
nothing processed; ``drop_after``: processed, then the connection closed unanswered, i.e. a
lost answer); :meth:`Emulator.respond` records and answers it accordingly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self, TypeVar

from sandbox.ledger import ChatLedger

__all__ = [
    "Emulator",
    "FaultKnobs",
    "JsonHandler",
    "LoopbackServer",
    "draw_fault",
    "validate_faults",
]

log = logging.getLogger(__name__)

A = TypeVar("A")


@dataclass(frozen=True)
class FaultKnobs:
    """The fault knobs every emulator has; a platform's knobs dataclass extends it."""

    latency: float = 0.0  #: seconds added to every request
    error_rate: float = 0.0  #: fraction of requests answered 500 without processing
    drop_rate: float = 0.0  #: fraction of requests dropped without processing
    drop_after_rate: float = 0.0  #: fraction of requests processed, then dropped (lost answer)
    seed: int | None = None  #: seed of the fault RNG

    def validated(self) -> Self:
        """Self, or ValueError when a knob is out of range (subclasses check their own too)."""
        validate_faults(self)
        return self


def validate_faults(knobs: Any) -> None:
    """ValueError when a fault knob is out of range."""
    for name in ("error_rate", "drop_rate", "drop_after_rate"):
        if not 0.0 <= getattr(knobs, name) <= 1.0:
            raise ValueError(f"{name} must be within [0, 1]")
    if knobs.latency < 0:
        raise ValueError("latency must be >= 0")


def draw_fault(rng: random.Random, knobs: FaultKnobs) -> str | None:
    """A request's fault; three draws per request keep seeded runs reproducible."""
    drop, error, drop_after = rng.random(), rng.random(), rng.random()
    if drop < knobs.drop_rate:
        return "drop"
    if error < knobs.error_rate:
        return "error"
    if drop_after < knobs.drop_after_rate:
        return "drop_after"
    return None


class LoopbackServer(ThreadingHTTPServer):
    """Threaded HTTP server that remembers its open connections so ``stop`` can cut them."""

    daemon_threads = True
    allow_reuse_address = True
    #: listen backlog; socketserver's default of 5 drops SYNs under bursts (1 s client stalls)
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], emulator: Any
    ) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet but for debugging: a dropped connection is usually a fault we injected."""
        log.debug("connection from %s failed", client_address, exc_info=True)


class JsonHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 handler that answers JSON or drops the connection."""

    protocol_version = "HTTP/1.1"  # keep-alive, so requests.Session reuses connections
    server_version = "tokenrelay-sandbox"
    timeout = 60  # seconds an idle keep-alive connection is kept
    disable_nagle_algorithm = True  # headers and body go out in two writes: don't stall 40 ms
    #: Content-Type of a JSON answer
    content_type = "application/json"
    server: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the ledger is the log."""

    def send_json(
        self, status: int, payload: dict[str, Any] | None, headers: dict[str, str] | None = None
    ) -> None:
        """Answer ``payload`` as JSON (None: an empty body) with ``headers`` first."""
        data = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if payload is not None:
            self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def drop(self) -> None:
        """Close the connection without a byte of answer: the client sees a ConnectionError."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class Emulator:
    """Start/stop, knobs, faults and ledger reads of a loopback emulator.

    Args: ``host``, ``port`` (0 picks a free port) and the knobs of ``knobs_class`` as
    keywords. ``start()`` serves on a background thread; ``base_url`` is then
    ``http://host:port``.
    """

    #: the knobs dataclass (frozen, extends FaultKnobs)
    knobs_class: ClassVar[type[FaultKnobs]] = FaultKnobs
    #: reads one request and hands it to the emulator
    handler_class: ClassVar[type[JsonHandler]] = JsonHandler
    #: the platform's name, for thread names
    platform: ClassVar[str] = "sandbox"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **knobs: Any) -> None:
        self.host = host
        self.port = port
        self._knobs: Any = self.knobs_class(**knobs).validated()
        self._ledger: ChatLedger[Any, Any] = self.new_ledger()
        self._cond = self._ledger.cond
        self._rng = random.Random(self._knobs.seed)
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    def new_ledger(self) -> ChatLedger[Any, Any]:
        """The platform's ledger."""
        raise NotImplementedError

    def reconfigured(self, changed: set[str]) -> None:
        """The knobs named in ``changed`` were just changed (the lock is held)."""

    def chat_key(self, chat_id: Any) -> str:
        """The ledger's key for a chat id as a caller gives it."""
        return str(chat_id)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self._server = LoopbackServer((self.host, self.port), self.handler_class, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # how soon stop() returns
            name=f"{self.platform}-sandbox:{self.port}",
            daemon=True,
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
            self.reconfigured(set(knobs))
            if "seed" in knobs:
                self._rng.seed(self._knobs.seed)
            self._cond.notify_all()

    def take_down(self, chat_id: str, message_id: Any) -> Any:
        """The user deletes a message (as the ledger keys it); KeyError if it isn't there."""
        with self._cond:
            message = self._ledger.stored(chat_id, message_id)
            if message is None or message.deleted:
                raise KeyError((chat_id, message_id))
            self._ledger.remove(message)
            return message

    # -- ledger --------------------------------------------------------------------------------

    def messages(self, chat_id: Any) -> list[Any]:
        """Copies of the chat's visible (not deleted) messages, oldest first; ``history``
        holds every text each one showed."""
        return self._ledger.messages(self.chat_key(chat_id))

    def texts(self, chat_id: Any) -> list[str]:
        return [m.text for m in self.messages(chat_id)]

    @property
    def calls(self) -> list[Any]:
        """Every call so far (faulted and rejected ones included)."""
        return self._ledger.calls()

    def count(
        self, method: str | None = None, status: int | None = None, chat_id: Any = None,
        fault: str | None = None,
    ) -> int:
        """How many calls match all the given filters."""
        chat = None if chat_id is None else self.chat_key(chat_id)
        return sum(
            1 for c in self.calls
            if (method is None or c.method == method) and (status is None or c.status == status)
            and (chat is None or c.chat_id == chat) and (fault is None or c.fault == fault)
        )

    def wait_for(self, predicate: Callable[[Any], Any], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` holds (re-checked on every ledger change) or timeout."""
        with self._cond:
            return bool(self._cond.wait_for(lambda: predicate(self), timeout))

    def ledger(self) -> dict[str, Any]:
        """The JSON view of what every chat shows and of every call."""
        return self._ledger.snapshot()

    # -- serving -------------------------------------------------------------------------------

    def arrive(self) -> tuple[float, str | None]:
        """A request arrives: its arrival time (monotonic) and fault, after the latency."""
        arrival = time.monotonic()
        with self._cond:
            knobs = self._knobs
            fault = draw_fault(self._rng, knobs)
        if knobs.latency > 0:
            time.sleep(knobs.latency)
        return arrival, fault

    def respond(
        self,
        fault: str | None,
        dropped: Any,
        failed: tuple[Any, A],
        process: Callable[[], tuple[Any, A]],
    ) -> A | None:
        """Record and answer a request under its fault; None means: drop the connection.

        ``drop`` records the call ``dropped``; ``error`` records and answers ``failed`` (call,
        answer); otherwise ``process()`` runs under the lock and returns (call, answer), and
        after a ``drop_after`` the call is recorded with status 0 and nothing is answered.
        """
        if fault == "drop":
            self._ledger.record(dropped)
            return None
        if fault == "error":
            call, answer = failed
            self._ledger.record(call)
            return answer
        with self._cond:
            call, answer = process()
            self._ledger.record(replace(call, status=0) if fault else call)
        return None if fault else answer
