"""The naive baseline: a seed-style, in-process Telegram streaming handler.

What the seed did, honestly reproduced: the agent's process accumulates the text; a 1.0 s timer
per stream makes it send the message once, then edit the whole text. Plain blocking
``requests`` calls, no retries, no splitting (at most the first 4096 characters are sent), no
rate budget; a 429 or any other error is logged and dropped. When the timer is due, ``emit()``
runs the flush synchronously in the agent's thread, so slow API calls stall the agent. The timer
thread flushes by itself only when the agent has gone quiet (a tool call, the end of a reply).
"""

from __future__ import annotations

import logging
import threading
import time

import requests

log = logging.getLogger(__name__)

#: seconds between two flushes of one stream (the seed's timer)
INTERVAL = 1.0
#: the seed sends at most this many characters (Python str length, not UTF-16 units)
MAX_CHARS = 4096
#: seconds without an emit() after which the timer thread flushes by itself (agent is quiet)
QUIET = 1.0
#: seconds for one blocking HTTP call
TIMEOUT = 10.0


class SeedStream:
    """One reply streamed the seed's way; ``emit()`` may block on the Bot API."""

    def __init__(self, api: str, chat_id: str, interval: float = INTERVAL) -> None:
        self.api = api
        self.chat_id = chat_id
        self.interval = interval
        self.errors = 0
        self._session = requests.Session()
        self._text: list[str] = []
        self._shown = ""
        self._message_id: int | None = None
        self._last_emit = time.monotonic()
        self._due = self._last_emit + interval
        self._flush_lock = threading.Lock()
        self._stopped = threading.Event()
        self._timer = threading.Thread(target=self._tick, name=f"seed-timer-{chat_id}", daemon=True)
        self._timer.start()

    def emit(self, token: str) -> None:
        """Append a token; when the timer is due, flush right here (blocking the agent)."""
        self._text.append(token)
        self._last_emit = now = time.monotonic()
        if now >= self._due:
            self._flush()

    def stop(self) -> None:
        """The final flush, in the caller's thread; a failure is logged and dropped."""
        self._stopped.set()
        self._flush(final=True)
        self._timer.join(TIMEOUT)
        self._session.close()

    def _tick(self) -> None:
        """Flush when due and the agent has been quiet for QUIET s (else emit() flushes)."""
        while True:
            wake = max(self._due, self._last_emit + QUIET)
            if self._stopped.wait(max(0.0, wake - time.monotonic())):
                return
            now = time.monotonic()
            if now >= self._due and now >= self._last_emit + QUIET:
                self._flush()

    def _flush(self, final: bool = False) -> None:
        with self._flush_lock:
            now = time.monotonic()
            if not final and now < self._due:
                return
            self._due = now + self.interval
            text = "".join(self._text)[:MAX_CHARS]
            if not text.strip() or text == self._shown:
                return
            if self._message_id is None:
                result = self._call("sendMessage", {"chat_id": self.chat_id, "text": text})
                if result is not None:
                    self._message_id = int(result["message_id"])
            else:
                payload = {"chat_id": self.chat_id, "message_id": self._message_id, "text": text}
                result = self._call("editMessageText", payload)
            if result is not None:
                self._shown = text

    def _call(self, method: str, payload: dict[str, object]) -> dict | None:
        try:
            resp = self._session.post(f"{self.api}/{method}", json=payload, timeout=TIMEOUT)
            body = resp.json()
        except (requests.RequestException, ValueError) as exc:
            self.errors += 1
            log.info("seed %s failed: %s", method, type(exc).__name__)
            return None
        if not body.get("ok"):
            self.errors += 1
            log.info("seed %s failed: %s", method, body.get("description"))
            return None
        result = body.get("result")
        return result if isinstance(result, dict) else {}


class SeedHandler:
    """Starts SeedStreams against one bot (``base_url`` of the Bot API, ``token``)."""

    name = "seed baseline"

    def __init__(self, base_url: str, token: str, interval: float = INTERVAL) -> None:
        self.api = f"{base_url}/bot{token}"
        self.interval = interval

    def start(self, chat_id: str) -> SeedStream:
        return SeedStream(self.api, chat_id, self.interval)

    def close(self) -> None:
        """Nothing to release: every stream owns its HTTP session."""
