"""The HTTP shell and ``TelegramEmulator``: a threaded loopback server in front of ``BotApi``.

The handler reads a request (JSON, form, multipart or query parameters; plain or chunked body)
and hands it to the emulator, which injects faults, calls the Bot API, records the call in the
ledger and answers, or drops the connection. ``/_sandbox/`` paths are the control endpoints.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import logging
import re
import time
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from sandbox import page
from sandbox.loopback import Emulator, JsonHandler
from sandbox.telegram.api import ApiError, BotApi, chat_id_param, int_param
from sandbox.telegram.entities import utf16_len
from sandbox.telegram.knobs import KNOB_PARSERS, Knobs
from sandbox.telegram.ledger import (
    Ledger,
    SandboxCall,
    SandboxDraft,
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


class _Handler(JsonHandler):
    """Reads one HTTP request, hands it to the emulator, writes (or drops) the answer."""

    def do_GET(self) -> None:
        if not page.handle(self, self.server.emulator, urlsplit(self.path).path):
            self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        emulator = self.server.emulator
        url = urlsplit(self.path)
        try:
            body = self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            self.send_json(exc.status, ApiError(exc.status, exc.description).payload())
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
            self.drop()
        else:
            self.send_json(*answer)

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


# --------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------

_API_PATH = re.compile(r"^/bot([^/]*)/([^/]+)$")


class TelegramEmulator(Emulator):
    """A Telegram Bot API on a loopback port, with fault knobs and a ledger.

    Args: ``host``, ``port`` (0 picks a free port) and the knobs of ``Knobs`` as keywords.
    ``start()`` serves on a background thread; ``base_url`` is then ``http://host:port`` and
    clients call ``f"{base_url}/bot{token}/{method}"``. ``GET /chats/<id>`` is the live chat page
    (sandbox/page.py).
    """

    knobs_class = Knobs
    handler_class = _Handler
    platform = "telegram"
    #: GET /chats/<id> shows the chat live (sandbox.page)
    serves_chat_page = True
    #: bot token ``tokenrelay_env`` hands out when the emulator accepts any well-formed one
    DEMO_TOKEN = "1000:sandbox-demo"

    _knobs: Knobs
    _ledger: Ledger

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **knobs: Any) -> None:
        super().__init__(host, port, **knobs)
        self._api = BotApi(self._ledger, self._knobs)

    def new_ledger(self) -> Ledger:
        return Ledger()

    def chat_key(self, chat_id: int | str) -> str:
        return normalise_chat_id(chat_id)

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

    def reconfigured(self, changed: set[str]) -> None:
        """Changing a limit resets the flood state."""
        self._api.reconfigure(self._knobs)

    def block(self, chat_id: int | str) -> None:
        """The user blocks the bot: further writes to the chat get 403."""
        with self._cond:
            self._api.blocked.add(normalise_chat_id(chat_id))

    def delete(self, chat_id: int | str, message_id: int) -> None:
        """The user deletes a message; KeyError if it isn't there."""
        self.take_down(normalise_chat_id(chat_id), int(message_id))

    def reset(self) -> None:
        """Forget messages, calls, drafts, flood state and blocks (knobs and RNG stay)."""
        with self._cond:
            self._ledger.clear()
            self._api.reset()

    # -- ledger --------------------------------------------------------------------------------

    def drafts(self, chat_id: int | str) -> list[SandboxDraft]:
        """Every sendMessageDraft update the chat received, in order."""
        return self._ledger.drafts(normalise_chat_id(chat_id))

    # -- serving -------------------------------------------------------------------------------

    def serve(self, path: str, params: dict[str, Any] | ApiError) -> tuple[int, dict] | None:
        """Answer one Bot API request; None means: drop the connection without an answer."""
        arrival, fault = self.arrive()
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
        error = ApiError(500, "Internal Server Error")

        def process() -> tuple[SandboxCall, tuple[int, dict]]:
            reply = self._api.call(token, method, params, time.monotonic())
            done = replace(
                call,
                status=reply.status,
                ok=reply.ok,
                error=reply.error,
                retry_after=reply.retry_after,
                message_id=reply.message_id or call.message_id,
            )
            return done, (reply.status, reply.payload)

        return self.respond(
            fault,
            dropped=replace(call, error="connection dropped"),
            failed=(replace(call, status=500, error=error.description), (500, error.payload())),
            process=process,
        )

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
