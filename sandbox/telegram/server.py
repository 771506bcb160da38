"""The HTTP shell and ``TelegramEmulator``: a threaded loopback server in front of ``BotApi``.

The handler reads a request (JSON, form, multipart or query parameters; plain or chunked body)
and hands it to the emulator, which injects faults, calls the Bot API, records the call in the
ledger and answers, or drops the connection. ``/_sandbox/`` paths are the control endpoints.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import fields, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from sandbox import page
from sandbox.telegram.api import ApiError, BotApi, chat_id_param, int_param
from sandbox.telegram.entities import utf16_len
from sandbox.telegram.knobs import KNOB_PARSERS, Knobs
from sandbox.telegram.ledger import (
    Ledger,
    SandboxCall,
    SandboxDraft,
    SandboxMessage,
    normalise_chat_id,
)

__all__ = ["MAX_BODY", "TelegramEmulator", "parse_params"]

log = logging.getLogger(__name__)

#: bytes; larger request bodies are answered 413
MAX_BODY = 1 << 20


# --------------------------------------------------------------------------------------------
# HTTP shell
# --------------------------------------------------------------------------------------------


def parse_params(query: str, content_type: str, body: bytes) -> dict[str, Any]:
    """Bot API parameters from the query string and a JSON, form or multipart body."""
    try:
        params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True, errors="strict"))
        mime = content_type.split(";")[0].strip().lower()
        if not body.strip():
            return params
        if mime == "application/json":
            data = json.loads(body)
            if not isinstance(data, dict):
                raise ApiError(400, "Bad Request: parameters must be a JSON object")
            params.update(data)
        elif mime == "multipart/form-data":
            params.update(_parse_multipart(content_type, body))
        else:
            params.update(parse_qsl(body.decode(), keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError:
        raise ApiError(400, "Bad Request: request must be encoded in UTF-8") from None
    except ValueError:
        raise ApiError(400, "Bad Request: can't parse request body") from None
    return params


def _parse_multipart(content_type: str, body: bytes) -> dict[str, str]:
    header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    if not message.is_multipart():
        raise ValueError("not multipart")
    params = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            params[name] = payload.decode()
    return params


class _BodyError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


class _Server(ThreadingHTTPServer):
    """Threaded HTTP server that remembers its open connections so ``stop`` can cut them."""

    daemon_threads = True
    allow_reuse_address = True
    #: listen backlog; socketserver's default of 5 drops SYNs under bursts (1 s client stalls)
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: TelegramEmulator) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

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
        log.debug("connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """Reads one HTTP request, hands it to the emulator, writes (or drops) the answer."""

    protocol_version = "HTTP/1.1"  # keep-alive, so requests.Session reuses connections
    server_version = "tokenrelay-sandbox"
    timeout = 60  # seconds an idle keep-alive connection is kept
    disable_nagle_algorithm = True  # headers and body go out in two writes: don't stall 40 ms
    server: _Server

    def do_GET(self) -> None:
        if not page.handle(self, self.server.emulator, urlsplit(self.path).path):
            self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the ledger is the log."""

    def _handle(self) -> None:
        emulator = self.server.emulator
        url = urlsplit(self.path)
        try:
            body = self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            self._reply(exc.status, ApiError(exc.status, exc.description).payload())
            return
        content_type = self.headers.get("Content-Type", "")
        params: dict[str, Any] | ApiError
        try:
            params = parse_params(url.query, content_type, body)
        except ApiError as exc:
            params = exc
        try:
            if url.path.startswith("/_sandbox/"):
                answer = emulator.control(self.command, url.path, params)
            else:
                answer = emulator.serve(url.path, params)
        except Exception:
            log.exception("sandbox failed on %s %s", self.command, url.path)
            answer = (500, ApiError(500, "Internal Server Error").payload())
        if answer is None:
            self._drop()
        else:
            self._reply(*answer)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            size = int(length)
        except ValueError:
            raise _BodyError(400, "Bad Request: invalid Content-Length") from None
        if size < 0:
            raise _BodyError(400, "Bad Request: invalid Content-Length")
        if size > MAX_BODY:
            raise _BodyError(413, "Request Entity Too Large")
        return self.rfile.read(size)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BodyError(400, "Bad Request: invalid chunked body") from None
            if size == 0:
                while self.rfile.readline(65537).strip():
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                raise _BodyError(413, "Request Entity Too Large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        """Close the connection without a byte of answer: the client sees a ConnectionError."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


# --------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------

_API_PATH = re.compile(r"^/bot([^/]*)/([^/]+)$")


class TelegramEmulator:
    """A Telegram Bot API on a loopback port, with fault knobs and a ledger.

    Args: ``host``, ``port`` (0 picks a free port) and the knobs of ``Knobs`` as keywords.
    ``start()`` serves on a background thread; ``base_url`` is then ``http://host:port`` and
    clients call ``f"{base_url}/bot{token}/{method}"``. ``GET /chats/<id>`` is the live chat page
    (sandbox/page.py).
    """

    #: GET /chats/<id> shows the chat live (sandbox.page)
    serves_chat_page = True
    #: bot token ``tokenrelay_env`` hands out when the emulator accepts any well-formed one
    DEMO_TOKEN = "1000:sandbox-demo"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **knobs: Any) -> None:
        self.host = host
        self.port = port
        self._knobs = Knobs(**knobs).validated()
        self._ledger = Ledger()
        self._cond = self._ledger.cond
        self._api = BotApi(self._ledger, self._knobs)
        self._rng = random.Random(self._knobs.seed)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> TelegramEmulator:
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # how soon stop() returns
            name=f"telegram-sandbox:{self.port}",
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

    def __enter__(self) -> TelegramEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return f"http://{self.host}:{self.port}"

    def tokenrelay_env(self) -> dict[str, str]:
        """The TOKENRELAY_* variables that point workers' default Telegram account here."""
        return {
            "TOKENRELAY_TELEGRAM_API_BASE": self.base_url,
            "TOKENRELAY_TELEGRAM_BOT_TOKEN": self._knobs.token or self.DEMO_TOKEN,
        }

    # -- control -------------------------------------------------------------------------------

    @property
    def knobs(self) -> Knobs:
        return self._knobs

    def configure(self, **knobs: Any) -> None:
        """Change knobs at runtime; changing a limit resets the flood state, ``seed`` the RNG."""
        unknown = set(knobs) - {f.name for f in fields(Knobs)}
        if unknown:
            raise TypeError(f"unknown knobs: {', '.join(sorted(unknown))}")
        with self._cond:
            self._knobs = replace(self._knobs, **knobs).validated()
            self._api.reconfigure(self._knobs)
            if "seed" in knobs:
                self._rng.seed(self._knobs.seed)

    def block(self, chat_id: int | str) -> None:
        """The user blocks the bot: further writes to the chat get 403."""
        with self._cond:
            self._api.blocked.add(normalise_chat_id(chat_id))

    def delete(self, chat_id: int | str, message_id: int) -> None:
        """The user deletes a message; KeyError if it isn't there."""
        with self._cond:
            message = self._ledger.find(normalise_chat_id(chat_id), int(message_id))
            if message is None:
                raise KeyError((chat_id, message_id))
            self._ledger.remove(message)

    def reset(self) -> None:
        """Forget messages, calls, drafts, flood state and blocks (knobs and RNG stay)."""
        with self._cond:
            self._ledger.clear()
            self._api.reset()

    # -- ledger --------------------------------------------------------------------------------

    def messages(self, chat_id: int | str) -> list[SandboxMessage]:
        """Copies of the chat's visible (not deleted) messages, in message_id order."""
        return self._ledger.messages(normalise_chat_id(chat_id))

    def texts(self, chat_id: int | str) -> list[str]:
        return [m.text for m in self.messages(chat_id)]

    def drafts(self, chat_id: int | str) -> list[SandboxDraft]:
        """Every sendMessageDraft update the chat received, in order."""
        return self._ledger.drafts(normalise_chat_id(chat_id))

    @property
    def calls(self) -> list[SandboxCall]:
        """Every Bot API call so far, in arrival order (faulted and rejected ones included)."""
        return self._ledger.calls()

    def count(
        self, method: str | None = None, status: int | None = None, chat_id: int | str | None = None
    ) -> int:
        """How many calls match all the given filters."""
        chat = None if chat_id is None else normalise_chat_id(chat_id)
        return sum(
            1
            for c in self.calls
            if (method is None or c.method == method)
            and (status is None or c.status == status)
            and (chat is None or c.chat_id == chat)
        )

    def wait_for(self, predicate: Callable[[TelegramEmulator], Any], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` holds (re-checked on every ledger change) or timeout."""
        with self._cond:
            return bool(self._cond.wait_for(lambda: predicate(self), timeout))

    def ledger(self) -> dict[str, Any]:
        """The JSON view of the ledger (also at ``GET /_sandbox/ledger``)."""
        return self._ledger.snapshot()

    # -- serving -------------------------------------------------------------------------------

    def serve(self, path: str, params: dict[str, Any] | ApiError) -> tuple[int, dict] | None:
        """Answer one Bot API request; None means: drop the connection without an answer."""
        arrival = time.monotonic()
        with self._cond:
            knobs = self._knobs
            fault = self._draw_fault(knobs)
        if knobs.latency > 0:
            time.sleep(knobs.latency)
        match = _API_PATH.match(path)
        token, method = (unquote(match[1]), match[2]) if match else (None, path)
        method = self._api.canonical.get(method.lower(), method)
        given = params if isinstance(params, dict) else {}
        text = given.get("text")
        call = SandboxCall(
            t=arrival,
            method=method,
            chat_id=_chat_id_or_none(given),
            message_id=int_param(given, "message_id"),
            status=0,
            ok=False,
            error=None,
            retry_after=None,
            text_len=utf16_len(text) if isinstance(text, str) else None,
            fault=fault,
        )
        if fault == "drop":
            self._ledger.record(replace(call, error="connection dropped"))
            return None
        if fault == "error":
            error = ApiError(500, "Internal Server Error")
            self._ledger.record(replace(call, status=500, error=error.description))
            return 500, error.payload()
        with self._cond:
            reply = self._api.call(token, method, params, time.monotonic())
            self._ledger.record(
                replace(
                    call,
                    status=0 if fault else reply.status,
                    ok=reply.ok,
                    error=reply.error,
                    retry_after=reply.retry_after,
                    message_id=reply.message_id or call.message_id,
                )
            )
        return None if fault else (reply.status, reply.payload)

    def _draw_fault(self, knobs: Knobs) -> str | None:
        """Decide a request's fault; three draws per request keep seeded runs reproducible."""
        drop, error, drop_after = self._rng.random(), self._rng.random(), self._rng.random()
        if drop < knobs.drop_rate:
            return "drop"
        if error < knobs.error_rate:
            return "error"
        if drop_after < knobs.drop_after_rate:
            return "drop_after"
        return None

    def control(
        self, command: str, path: str, params: dict[str, Any] | ApiError
    ) -> tuple[int, dict]:
        """The ``/_sandbox/`` endpoints for other processes (never faulted, never recorded).

        ``GET ledger``; ``POST reset``; ``POST configure`` {knob: value…};
        ``POST block`` {chat_id}; ``POST delete`` {chat_id, message_id}.
        """
        action = path.removeprefix("/_sandbox/").strip("/")
        if isinstance(params, ApiError):
            return params.status, params.payload()
        try:
            if command == "GET" and action == "ledger":
                return 200, {"ok": True, **self.ledger()}
            if command != "POST":
                raise ApiError(404, "Not Found")
            if action == "reset":
                self.reset()
            elif action == "configure":
                self.configure(**{k: KNOB_PARSERS.get(k, str)(v) for k, v in params.items()})
            elif action == "block":
                self.block(chat_id_param(params))
            elif action == "delete":
                try:
                    self.delete(chat_id_param(params), int(params["message_id"]))
                except KeyError:
                    raise ApiError(400, "Bad Request: message to delete not found") from None
            else:
                raise ApiError(404, "Not Found")
        except ApiError as exc:
            return exc.status, exc.payload()
        except (KeyError, TypeError, ValueError) as exc:
            return 400, ApiError(400, f"Bad Request: {exc}").payload()
        return 200, {"ok": True}


def _chat_id_or_none(params: dict[str, Any]) -> str | None:
    try:
        return chat_id_param(params)
    except ApiError:
        return None
