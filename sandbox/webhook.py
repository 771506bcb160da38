"""Loopback emulator of a plain message webhook (a channel that cannot edit).

``POST /hook`` with ``{"chat_id": …, "text": …}`` (and ``Authorization: Bearer <token>`` when the
emulator has a token) answers ``{"ok": true, "id": "<n>"}``; too many messages per second answer
429 with ``Retry-After``. The ledger keeps every delivered message per chat::

    with WebhookEmulator() as hook:
        requests.post(hook.url, json={"chat_id": "room", "text": "hi"})
        assert hook.texts("room") == ["hi"]
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["WebhookEmulator", "WebhookMessage"]


@dataclass(frozen=True)
class WebhookMessage:
    chat_id: str
    id: str
    text: str
    t: float


class WebhookEmulator:
    """A threaded HTTP server on 127.0.0.1 with a ledger, a rate limit and a 5xx knob."""

    def __init__(
        self,
        token: str | None = None,
        rate: float = 1000.0,
        burst: int = 1000,
        error_rate: float = 0.0,
        max_chars: int = 4000,
        seed: int | None = None,
    ) -> None:
        self.token = token
        self.rate, self.burst = rate, burst
        self.error_rate = error_rate
        self.max_chars = max_chars
        self._rng = random.Random(seed)
        self._cond = threading.Condition()
        self._messages: list[WebhookMessage] = []
        self._tokens, self._stamp = float(burst), time.monotonic()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def tokenrelay_env(self) -> dict[str, str]:
        """The TOKENRELAY_* variables that point workers' default webhook account here."""
        env = {"TOKENRELAY_WEBHOOK_URL": self.url}
        if self.token is not None:
            env["TOKENRELAY_WEBHOOK_BOT_TOKEN"] = self.token
        return env

    def start(self) -> WebhookEmulator:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, body, headers = emulator._handle(
                    self.headers.get("Authorization", ""), self.rfile.read(length)
                )
                raw = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> WebhookEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, auth: str, raw: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._cond:
            status, body, headers = self._decide(auth, raw)
            self._cond.notify_all()
            return status, body, headers

    def _decide(self, auth: str, raw: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        if self.token is not None and auth != f"Bearer {self.token}":
            return 401, {"ok": False, "error": "invalid token"}, {}
        if self._rng.random() < self.error_rate:
            return 500, {"ok": False, "error": "internal error"}, {}
        try:
            data = json.loads(raw)
            chat, text = str(data["chat_id"]), str(data["text"])
        except (ValueError, KeyError, TypeError):
            return 400, {"ok": False, "error": "expected JSON {chat_id, text}"}, {}
        if not text.strip():
            return 400, {"ok": False, "error": "empty text"}, {}
        if len(text) > self.max_chars:
            return 400, {"ok": False, "error": "text too long"}, {}
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens < 1:
            wait = math.ceil((1 - self._tokens) / self.rate)
            return 429, {"ok": False, "error": "rate limited"}, {"Retry-After": str(wait)}
        self._tokens -= 1
        message = WebhookMessage(chat, str(len(self._messages) + 1), text, now)
        self._messages.append(message)
        return 200, {"ok": True, "id": message.id}, {}

    # ledger -----------------------------------------------------------------------------------
    def messages(self, chat_id: str) -> list[WebhookMessage]:
        with self._cond:
            return [m for m in self._messages if m.chat_id == str(chat_id)]

    def texts(self, chat_id: str) -> list[str]:
        return [m.text for m in self.messages(chat_id)]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        """Wait until ``predicate(self)`` holds, re-checked on every request (no polling)."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)
