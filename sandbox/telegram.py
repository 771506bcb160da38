"""Loopback emulator of the Telegram Bot API, for tests and the demo.

It speaks the Bot API's wire format (``/bot<token>/<method>`` with JSON, form or query parameters;
errors as ``{"ok": false, "error_code": N, "description": "…"}``), enforces the text limit, entity
parsing and flood limits, injects faults, and keeps a ledger of every call and every message that
tests read to judge outcomes::

    with TelegramEmulator(seed=1) as emu:
        requests.post(f"{emu.base_url}/bot123:abc/sendMessage", json={"chat_id": 7, "text": "hi"})
        assert emu.texts(7) == ["hi"]

Stand-alone for other processes: ``python -m sandbox.telegram --port 8081 --latency 0.05``; then
``GET /_sandbox/ledger`` reports what it holds (see ``TelegramEmulator.control``).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import email.parser
import email.policy
import json
import logging
import math
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from operator import attrgetter
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "BLOCKED",
    "NOT_MODIFIED",
    "ApiError",
    "BotApi",
    "EntityParseError",
    "FloodControl",
    "Knobs",
    "Ledger",
    "SandboxCall",
    "SandboxDraft",
    "SandboxMessage",
    "TelegramEmulator",
    "TokenBucket",
    "utf16_len",
    "visible_text",
]

log = logging.getLogger(__name__)

#: seconds a chat's flood penalty grows by for each call it makes while already answered 429
PENALTY_STEP = 1.0
#: bytes; larger request bodies are answered 413
MAX_BODY = 1 << 20
#: characters Telegram trims from both ends of a message's visible text
TRIMMED = " \t\n\r\f\v"
#: what tdlib's markup parsers treat as white space
_SPACE = " \t\n\r\f\v\0"


# --------------------------------------------------------------------------------------------
# Text: UTF-16 length and Telegram's three markup dialects
# --------------------------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit of Telegram's text limits."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class EntityParseError(ValueError):
    """Markup Telegram refuses; the message is what follows "can't parse entities: "."""


class _Parser:
    """Shared state of the markup parsers: source text, visible output, error helper."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.out: list[str] = []

    def parse(self) -> str:
        """The visible text; raises EntityParseError where Telegram would refuse the markup."""
        raise NotImplementedError

    def offset(self, index: int) -> int:
        """The UTF-8 byte offset of ``self.text[index]``, the unit of Telegram's error messages."""
        return len(self.text[:index].encode("utf-8", "surrogatepass"))


_HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "code",
        "pre",
        "a",
        "blockquote",
        "tg-spoiler",
        "span",
    }
)
_HTML_PLAIN = re.compile(r"[^<&]+")
_HTML_ENTITY = re.compile(r"&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|([A-Za-z]+));")
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_NAME_TOKEN = re.compile(r"[A-Za-z0-9.-]*")


def _html_entity(match: re.Match[str]) -> str | None:
    """The character an ``&…;`` reference stands for, or None if Telegram doesn't know it."""
    if match[3] is not None:
        return _HTML_NAMED.get(match[3])
    code = int(match[1]) if match[1] is not None else int(match[2], 16)
    if 0 < code < 0x110000 and not 0xD800 <= code <= 0xDFFF:
        return chr(code)
    return None


class _HtmlParser(_Parser):
    """Telegram's HTML: a fixed tag set, four named entities plus numeric references.

    Stricter than Telegram in one way, on purpose: a ``&`` in text that doesn't start a known
    entity is an error (Telegram keeps it literally), so unescaped user text is caught.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.open: list[str] = []

    def parse(self) -> str:
        text, i = self.text, 0
        while i < len(text):
            if plain := _HTML_PLAIN.match(text, i):
                self.out.append(plain.group())
                i = plain.end()
            elif text[i] == "&":
                i = self._entity(i)
            elif text.startswith("</", i):
                i = self._end_tag(i)
            else:
                i = self._start_tag(i)
        if self.open:
            tag = self.open[-1]
            raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{tag}"')
        return "".join(self.out)

    def _entity(self, i: int) -> int:
        match = _HTML_ENTITY.match(self.text, i)
        char = _html_entity(match) if match else None
        if match is None or char is None:
            at = self.offset(i)
            raise EntityParseError(f'Character "&" at byte offset {at} must be escaped as "&amp;"')
        self.out.append(char)
        return match.end()

    def _name_end(self, i: int) -> int:
        while i < len(self.text) and self.text[i] not in _SPACE and self.text[i] != ">":
            i += 1
        return i

    def _start_tag(self, begin: int) -> int:
        text = self.text
        end = self._name_end(begin + 1)
        if end >= len(text):
            raise EntityParseError(f"Unclosed start tag at byte offset {self.offset(begin)}")
        tag = text[begin + 1 : end].lower()
        at = self.offset(begin)
        if tag not in _HTML_TAGS:
            raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {at}')
        attributes, end = self._attributes(tag, begin, end)
        if tag == "span" and attributes.get("class") != "tg-spoiler":
            raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {at}')
        self.open.append(tag)
        return end + 1

    def _attributes(self, tag: str, begin: int, i: int) -> tuple[dict[str, str], int]:
        """Read ``name="value"`` pairs up to the tag's ``>``; return them and the ``>`` index."""
        text, n = self.text, len(self.text)
        attributes: dict[str, str] = {}
        unclosed = EntityParseError(f"Unclosed start tag at byte offset {self.offset(begin)}")
        no_equal = EntityParseError(
            f'Expected equal sign in declaration of attribute of the tag "{tag}" '
            f"at byte offset {self.offset(begin)}"
        )
        while True:
            while i < n and text[i] in _SPACE:
                i += 1
            if i >= n:
                raise unclosed
            if text[i] == ">":
                return attributes, i
            start = i
            while i < n and text[i] not in _SPACE and text[i] not in "=>":
                i += 1
            name = text[start:i].lower()
            while i < n and text[i] in _SPACE:
                i += 1
            if name and i < n and text[i] == "=":
                i += 1
                while i < n and text[i] in _SPACE:
                    i += 1
                if i >= n:
                    raise unclosed
                if text[i] in "\"'":
                    close = text.find(text[i], i + 1)
                    if close < 0:
                        raise unclosed
                    # Inside attribute values Telegram keeps unknown "&" literally (URLs have them).
                    value = _HTML_ENTITY.sub(
                        lambda m: _html_entity(m) or m.group(), text[i + 1 : close]
                    )
                    i = close + 1
                else:
                    token = _NAME_TOKEN.match(text, i)
                    assert token is not None  # the pattern matches the empty string
                    value, i = token.group().lower(), token.end()
                    if i < n and text[i] not in _SPACE and text[i] != ">":
                        at = self.offset(token.start())
                        raise EntityParseError(f"Unexpected end of name token at byte offset {at}")
            elif name == "expandable" and tag == "blockquote":
                value = ""
            else:
                raise no_equal
            attributes[name] = value

    def _end_tag(self, begin: int) -> int:
        if not self.open:
            raise EntityParseError(f"Unexpected end tag at byte offset {self.offset(begin)}")
        text = self.text
        end = self._name_end(begin + 2)
        name = text[begin + 2 : end].lower()
        while end < len(text) and text[end] in _SPACE:
            end += 1
        if end >= len(text) or text[end] != ">":
            raise EntityParseError(f"Unclosed end tag at byte offset {self.offset(begin)}")
        expected = self.open[-1]
        if name and name != expected:
            raise EntityParseError(
                f"Unmatched end tag at byte offset {self.offset(begin)}, "
                f'expected "</{expected}>", found "</{name}>"'
            )
        self.open.pop()
        return end + 1


_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
#: the marker that ends each MarkdownV2 entity (named as in Telegram's error messages)
_MDV2_CLOSERS = {
    "Bold": "*",
    "Italic": "_",
    "Underline": "__",
    "Strikethrough": "~",
    "Spoiler": "||",
    "Code": "`",
    "Pre": "```",
    "PreCode": "```",
    "TextUrl": "]",
    "CustomEmoji": "]",
}


class _MarkdownV2Parser(_Parser):
    """Telegram's MarkdownV2: nested entities, every reserved character escaped with ``\\``.

    Covers bold, italic, underline, strikethrough, spoiler, code, pre (with language), links,
    custom emoji and ``>`` / ``**>`` block quotes (with the ``||`` expandable end marker).
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.open: list[tuple[str, int]] = []  # (entity type, index of its opening marker)
        self.quote_line = False

    def parse(self) -> str:
        text, i = self.text, 0
        while i < len(text):
            c = text[i]
            if c == "\\" and i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126:
                self.out.append(text[i + 1])
                i += 2
                continue
            verbatim = bool(self.open) and self.open[-1][0] in ("Code", "Pre", "PreCode")
            if not verbatim and (i == 0 or text[i - 1] == "\n"):
                self.quote_line = text.startswith((">", "**>"), i)
                if self.quote_line:
                    i += 1 if c == ">" else 3
                    continue
            if c not in ("`" if verbatim else _MDV2_RESERVED):
                self.out.append(c)
                i += 1
                continue
            closer = _MDV2_CLOSERS[self.open[-1][0]] if self.open else None
            if self._expandable_end(i, closer):
                i += 2
            elif closer is not None and self._closes(closer, i):
                i = self._close(i + len(closer))
            elif verbatim:
                raise self._reserved(c)
            else:
                i = self._open(i)
        if self.open:
            kind, begin = self.open[-1]
            at = self.offset(begin)
            raise EntityParseError(f"Can't find end of {kind} entity at byte offset {at}")
        return "".join(self.out)

    @staticmethod
    def _reserved(c: str) -> EntityParseError:
        return EntityParseError(
            f"Character '{c}' is reserved and must be escaped with the preceding '\\'"
        )

    def _expandable_end(self, i: int, closer: str | None) -> bool:
        """``||`` closing the last line of a block quote marks it expandable."""
        if not (self.quote_line and closer != "||" and self.text.startswith("||", i)):
            return False
        return i + 2 == len(self.text) or self.text[i + 2] == "\n"

    def _closes(self, closer: str, i: int) -> bool:
        if closer == "_":
            return self.text[i] == "_" and not self.text.startswith("__", i)
        return self.text.startswith(closer, i)

    def _close(self, i: int) -> int:
        kind, _ = self.open.pop()
        if kind not in ("TextUrl", "CustomEmoji"):
            return i
        url = None
        if self.text.startswith("(", i):
            url, i = self._url(i + 1)
        if kind == "CustomEmoji" and not (url or "").startswith("tg://emoji?id="):
            raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
        return i

    def _url(self, start: int) -> tuple[str, int]:
        """Read a link target up to its unescaped ``)``; return it and the index after."""
        text, i, url = self.text, start, []
        while i < len(text) and text[i] != ")":
            if text[i] == "\\" and i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126:
                i += 1
            url.append(text[i])
            i += 1
        if i >= len(text):
            raise EntityParseError(f"Can't find end of a URL at byte offset {self.offset(start)}")
        return "".join(url), i + 1

    def _open(self, i: int) -> int:
        text = self.text
        if text.startswith("```", i):
            return self._open_pre(i)
        for marker, kind in (
            ("__", "Underline"),
            ("_", "Italic"),
            ("*", "Bold"),
            ("~", "Strikethrough"),
            ("||", "Spoiler"),
            ("[", "TextUrl"),
            ("![", "CustomEmoji"),
            ("`", "Code"),
        ):
            if text.startswith(marker, i):
                self.open.append((kind, i))
                return i + len(marker)
        raise self._reserved(text[i])

    def _open_pre(self, begin: int) -> int:
        text = self.text
        i = end = begin + 3
        while end < len(text) and text[end] not in _SPACE and text[end] != "`":
            end += 1
        kind = "Pre"
        if end != i and end < len(text) and text[end] != "`":
            kind, i = "PreCode", end  # the language name is not shown
        if text.startswith(("\r\n", "\n\r"), i):
            i += 2
        elif text[i : i + 1] in ("\n", "\r"):
            i += 1
        self.open.append((kind, begin))
        return i


class _MarkdownParser(_Parser):
    """Telegram's legacy Markdown: ``*bold*``, ``_italic_``, ```code```, pre blocks and links."""

    def parse(self) -> str:
        text, i = self.text, 0
        while i < len(text):
            c = text[i]
            if c == "\\" and text[i + 1 : i + 2] in ("_", "*", "`", "["):
                self.out.append(text[i + 1])
                i += 2
            elif c not in "_*`[":
                self.out.append(c)
                i += 1
            else:
                i = self._entity(i)
        return "".join(self.out)

    def _entity(self, begin: int) -> int:
        text, c = self.text, self.text[begin]
        end_char = "]" if c == "[" else c
        i = begin + 1
        is_pre = c == "`" and text.startswith("``", i)
        if is_pre:
            i = end = i + 2
            while end < len(text) and text[end] not in _SPACE and text[end] != "`":
                end += 1
            if end != i and end < len(text) and text[end] != "`":
                i = end  # the language name is not shown
            if text.startswith(("\r\n", "\n\r"), i):
                i += 2
            elif text[i : i + 1] in ("\n", "\r"):
                i += 1
        while i < len(text) and not (
            text[i] == end_char and (not is_pre or text.startswith("``", i + 1))
        ):
            self.out.append(text[i])
            i += 1
        if i >= len(text):
            at = self.offset(begin)
            raise EntityParseError(f"Can't find end of the entity starting at byte offset {at}")
        if c == "[" and text.startswith("(", i + 1):
            close = text.find(")", i + 2)
            i = len(text) if close < 0 else close
        return i + (3 if is_pre else 1)


#: parse_mode values the Bot API accepts (case-insensitively), by their canonical spelling
PARSE_MODES = {"html": "HTML", "markdownv2": "MarkdownV2", "markdown": "Markdown"}
_PARSERS: dict[str, type[_Parser]] = {
    "HTML": _HtmlParser,
    "MarkdownV2": _MarkdownV2Parser,
    "Markdown": _MarkdownParser,
}


def visible_text(text: str, parse_mode: str | None) -> str:
    """What a chat shows for ``text`` in ``parse_mode`` (canonical name or None): markup removed.

    Raises EntityParseError for markup Telegram refuses. The result is not yet trimmed.
    """
    if parse_mode is None:
        return text
    return _PARSERS[parse_mode](text).parse()


# --------------------------------------------------------------------------------------------
# Flood control
# --------------------------------------------------------------------------------------------


class TokenBucket:
    """Tokens refill continuously at ``rate`` per second, up to ``burst``; a request takes one."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = now

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0.0 when one is available now)."""
        if now > self._stamp:
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
        missing = 1.0 - self._tokens
        return 0.0 if missing <= 1e-9 else missing / self.rate

    def take(self, now: float) -> None:
        """Spend one token (call ``wait`` first: the bucket does not refuse)."""
        self.wait(now)
        self._tokens -= 1.0


def is_private(chat_id: str) -> bool:
    """Chats with a non-negative numeric id are private; groups and @channels are not."""
    return chat_id.isdigit()


class FloodControl:
    """Telegram-style flood limits for sends and edits, with growing penalties.

    A call needs one token from its chat's bucket (private chats: ``private_rate`` per second;
    groups, chat_id < 0: ``group_per_minute`` per minute) and one from its bot's global bucket.
    If either is empty the call is refused with ``retry_after = ceil(wait)`` (at least 1) and
    takes nothing. The refusal opens a penalty window for the chat until the token is due; every
    further call to the chat inside the window is refused too and extends the window by
    ``PENALTY_STEP`` seconds, so a client that ignores retry_after is told to wait longer and
    longer, while one that waits as told finds its token ready.
    """

    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self._chats: dict[tuple[int, str], TokenBucket] = {}
        self._bots: dict[int, TokenBucket] = {}
        self._penalty_until: dict[tuple[int, str], float] = {}

    def acquire(self, bot_id: int, chat_id: str, now: float) -> int | None:
        """Take a token for one call; return None if granted, else retry_after in seconds."""
        key = (bot_id, chat_id)
        until = self._penalty_until.get(key, 0.0)
        if now < until:
            until += PENALTY_STEP
            self._penalty_until[key] = until
            return max(1, math.ceil(until - now))
        chat = self._chats.get(key)
        if chat is None:
            chat = self._chats[key] = self._chat_bucket(chat_id, now)
        bot = self._bots.get(bot_id)
        if bot is None:
            k = self.knobs
            bot = self._bots[bot_id] = TokenBucket(k.global_rate, k.global_burst, now)
        wait = max(chat.wait(now), bot.wait(now))
        if wait > 0:
            self._penalty_until[key] = now + wait
            return max(1, math.ceil(wait))
        chat.take(now)
        bot.take(now)
        return None

    def _chat_bucket(self, chat_id: str, now: float) -> TokenBucket:
        k = self.knobs
        if is_private(chat_id):
            return TokenBucket(k.private_rate, k.private_burst, now)
        return TokenBucket(k.group_per_minute / 60.0, k.group_burst, now)


# --------------------------------------------------------------------------------------------
# Ledger
# --------------------------------------------------------------------------------------------


@dataclass
class SandboxMessage:
    """One message as the chat shows it."""

    chat_id: str
    message_id: int
    text: str  #: visible text, after entity parsing and trimming
    raw_text: str  #: as sent, markup included
    parse_mode: str | None  #: canonical name ("HTML", "MarkdownV2", "Markdown") or None
    edits: int
    created_at: float  #: time.monotonic() when sent
    updated_at: float  #: time.monotonic() of the last send or edit
    history: list[tuple[float, str]]  #: (monotonic time, visible text), starting with the send
    deleted: bool
    date: int = 0  #: unix time when sent (the Bot API's "date")


@dataclass(frozen=True)
class SandboxCall:
    """One request to the Bot API and how it was answered."""

    t: float  #: time.monotonic() at arrival
    method: str  #: canonical method name (or the raw path when it was not a Bot API path)
    chat_id: str | None
    message_id: int | None  #: the message sent, edited or deleted
    status: int  #: HTTP status; 0 when the connection was dropped
    ok: bool  #: the method took effect (also true for a drop after processing)
    error: str | None  #: the error description
    retry_after: int | None
    text_len: int | None  #: UTF-16 length of the text parameter as sent
    fault: str | None = None  #: "error", "drop" or "drop_after" when a fault was injected


@dataclass(frozen=True)
class SandboxDraft:
    """One sendMessageDraft update (drafts never become messages by themselves)."""

    t: float
    chat_id: str
    draft_id: int
    text: str


def normalise_chat_id(chat_id: int | str) -> str:
    """The ledger's key for a chat: ``42``, ``"42"`` and ``" 42 "`` are all ``"42"``."""
    text = str(chat_id).strip()
    return str(int(text)) if re.fullmatch(r"-?\d+", text) else text


class Ledger:
    """What the platform holds: messages per chat, drafts and every call.

    All access goes through ``cond`` (a Condition over an RLock), notified on every change.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.RLock())
        self._chats: dict[str, dict[int, SandboxMessage]] = {}
        self._calls: list[SandboxCall] = []
        self._drafts: dict[str, list[SandboxDraft]] = {}

    def clear(self) -> None:
        with self.cond:
            self._chats.clear()
            self._calls.clear()
            self._drafts.clear()
            self.cond.notify_all()

    def add_message(
        self, chat_id: str, raw: str, text: str, parse_mode: str | None, now: float
    ) -> SandboxMessage:
        with self.cond:
            chat = self._chats.setdefault(chat_id, {})
            message = SandboxMessage(
                chat_id=chat_id,
                message_id=len(chat) + 1,  # deleted messages stay in the dict
                text=text,
                raw_text=raw,
                parse_mode=parse_mode,
                edits=0,
                created_at=now,
                updated_at=now,
                history=[(now, text)],
                deleted=False,
                date=int(time.time()),
            )
            chat[message.message_id] = message
            self.cond.notify_all()
            return message

    def find(self, chat_id: str, message_id: int) -> SandboxMessage | None:
        """The live message (not a copy), or None if it never existed or was deleted."""
        with self.cond:
            message = self._chats.get(chat_id, {}).get(message_id)
            return None if message is None or message.deleted else message

    def edit(
        self, message: SandboxMessage, raw: str, text: str, parse_mode: str | None, now: float
    ) -> None:
        with self.cond:
            message.raw_text, message.text, message.parse_mode = raw, text, parse_mode
            message.edits += 1
            message.updated_at = now
            message.history.append((now, text))
            self.cond.notify_all()

    def remove(self, message: SandboxMessage) -> None:
        with self.cond:
            message.deleted = True
            self.cond.notify_all()

    def add_draft(self, draft: SandboxDraft) -> None:
        with self.cond:
            self._drafts.setdefault(draft.chat_id, []).append(draft)
            self.cond.notify_all()

    def record(self, call: SandboxCall) -> None:
        """Add a finished call, keeping the list in arrival order."""
        with self.cond:
            bisect.insort(self._calls, call, key=attrgetter("t"))
            self.cond.notify_all()

    def messages(self, chat_id: str, include_deleted: bool = False) -> list[SandboxMessage]:
        """Copies of the chat's messages in message_id order."""
        with self.cond:
            chat = self._chats.get(chat_id, {})
            return [
                replace(m, history=list(m.history))
                for _, m in sorted(chat.items())
                if include_deleted or not m.deleted
            ]

    def calls(self) -> list[SandboxCall]:
        with self.cond:
            return list(self._calls)

    def drafts(self, chat_id: str) -> list[SandboxDraft]:
        with self.cond:
            return list(self._drafts.get(chat_id, []))

    def snapshot(self) -> dict[str, Any]:
        """The JSON view served at ``/_sandbox/ledger``."""
        with self.cond:
            chats = {
                chat_id: [
                    {
                        "message_id": m.message_id,
                        "text": m.text,
                        "edits": m.edits,
                        "deleted": m.deleted,
                    }
                    for m in self.messages(chat_id, include_deleted=True)
                ]
                for chat_id in self._chats
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


# --------------------------------------------------------------------------------------------
# Bot API methods
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Knobs:
    """Every setting of the emulator that ``configure`` can change at runtime."""

    token: str | None = None  #: the only bot token accepted; None accepts any well-formed token
    latency: float = 0.0  #: seconds added to every Bot API request
    error_rate: float = 0.0  #: fraction of requests answered 500 without processing
    drop_rate: float = 0.0  #: fraction of requests dropped without processing
    drop_after_rate: float = 0.0  #: fraction of requests processed, then dropped
    private_rate: float = 1.0  #: messages per second per private chat
    private_burst: int = 3  #: bucket size per private chat
    group_per_minute: float = 20.0  #: messages per minute per group chat
    group_burst: int = 3  #: bucket size per group chat
    global_rate: float = 30.0  #: messages per second per bot
    global_burst: int = 30  #: bucket size per bot
    max_units: int = 4096  #: text limit in UTF-16 code units of visible text
    seed: int | None = None  #: seed of the fault RNG

    def validated(self) -> Knobs:
        for name in ("error_rate", "drop_rate", "drop_after_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if self.latency < 0:
            raise ValueError("latency must be >= 0")
        for name in ("private_rate", "group_per_minute", "global_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        for name in ("private_burst", "group_burst", "global_burst", "max_units"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        return self


#: knobs whose change resets the flood state
_LIMIT_KNOBS = frozenset(
    {
        "private_rate",
        "private_burst",
        "group_per_minute",
        "group_burst",
        "global_rate",
        "global_burst",
    }
)


def _optional(parse: Callable[[str], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value in (None, "", "none", "None") else parse(value)


#: how a knob's value is read from a command line or a form
KNOB_PARSERS: dict[str, Callable[[Any], Any]] = {
    "token": _optional(str),
    "seed": _optional(int),
    "private_burst": int,
    "group_burst": int,
    "global_burst": int,
    "max_units": int,
    **dict.fromkeys(
        [
            "latency",
            "error_rate",
            "drop_rate",
            "drop_after_rate",
            "private_rate",
            "group_per_minute",
            "global_rate",
        ],
        float,
    ),
}


class ApiError(Exception):
    """A Bot API error answer: HTTP ``status`` and Telegram's ``description``."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.status}
        body["description"] = self.description
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


@dataclass(frozen=True)
class ApiReply:
    """How the Bot API answered one call."""

    status: int
    payload: dict[str, Any]
    message_id: int | None = None
    error: str | None = None
    retry_after: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class _Request:
    bot_id: int
    params: dict[str, Any]
    now: float


_TOKEN = re.compile(r"^(\d+):[A-Za-z0-9_-]+$")
_CHAT_ID = re.compile(r"^-?\d+$|^@[A-Za-z0-9_]{1,64}$")
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
BLOCKED = "Forbidden: bot was blocked by the user"


def chat_id_param(params: dict[str, Any]) -> str:
    """The request's chat_id, normalised; 400 "chat not found" when missing or malformed."""
    value = params.get("chat_id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and _CHAT_ID.match(value.strip()):
        return normalise_chat_id(value)
    raise ApiError(400, "Bad Request: chat not found")


def int_param(params: dict[str, Any], name: str) -> int | None:
    value = params.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


class BotApi:
    """The Bot API's methods over a ledger: validation, entity parsing, flood limits, answers.

    Callers hold ``ledger.cond`` around ``call``, which answers client errors instead of raising.
    """

    def __init__(self, ledger: Ledger, knobs: Knobs) -> None:
        self.ledger = ledger
        self.knobs = knobs
        self.flood = FloodControl(knobs)
        self.blocked: set[str] = set()
        self._methods: dict[str, Callable[[_Request], ApiReply]] = {
            "getMe": self.get_me,
            "sendMessage": self.send_message,
            "editMessageText": self.edit_message_text,
            "deleteMessage": self.delete_message,
            "sendChatAction": self.send_chat_action,
            "sendMessageDraft": self.send_message_draft,
        }
        #: method names are case-insensitive in the Bot API
        self.canonical = {name.lower(): name for name in self._methods}

    def reconfigure(self, knobs: Knobs) -> None:
        """Adopt new knobs; a change of any limit starts the flood state afresh."""
        if any(getattr(knobs, k) != getattr(self.knobs, k) for k in _LIMIT_KNOBS):
            self.flood = FloodControl(knobs)
        self.knobs = knobs

    def reset(self) -> None:
        self.flood = FloodControl(self.knobs)
        self.blocked.clear()

    def call(
        self, token: str | None, method: str, params: dict[str, Any] | ApiError, now: float
    ) -> ApiReply:
        """Run one method; ``token`` None or an unknown ``method`` is a 404."""
        try:
            if token is None:
                raise ApiError(404, "Not Found")
            bot_id = self._authorise(token)
            handler = self._methods.get(self.canonical.get(method.lower(), ""))
            if handler is None:
                raise ApiError(404, "Not Found")
            if isinstance(params, ApiError):
                raise params
            return handler(_Request(bot_id, params, now))
        except ApiError as exc:
            return ApiReply(
                exc.status, exc.payload(), error=exc.description, retry_after=exc.retry_after
            )

    def _authorise(self, token: str) -> int:
        """The bot id of an accepted token; 401 otherwise."""
        match = _TOKEN.match(token)
        accepted = match is not None if self.knobs.token is None else token == self.knobs.token
        if not accepted:
            raise ApiError(401, "Unauthorized")
        return int(match[1]) if match else 0

    # -- methods -------------------------------------------------------------------------------

    def get_me(self, req: _Request) -> ApiReply:
        return self._ok(self._bot_user(req.bot_id))

    def send_message(self, req: _Request) -> ApiReply:
        chat_id = self._open_chat(req.params)
        raw, text, mode = self._text(req.params)
        self._take_budget(req, chat_id)
        message = self.ledger.add_message(chat_id, raw, text, mode, req.now)
        return self._ok(self._message_json(message, req.bot_id), message.message_id)

    def edit_message_text(self, req: _Request) -> ApiReply:
        chat_id = self._open_chat(req.params)
        raw, text, mode = self._text(req.params)
        message_id = int_param(req.params, "message_id")
        message = None if message_id is None else self.ledger.find(chat_id, message_id)
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if message.text == text and message.parse_mode == mode:
            raise ApiError(400, NOT_MODIFIED)
        self._take_budget(req, chat_id)
        self.ledger.edit(message, raw, text, mode, req.now)
        result = self._message_json(message, req.bot_id) | {"edit_date": int(time.time())}
        return self._ok(result, message.message_id)

    def delete_message(self, req: _Request) -> ApiReply:
        chat_id = chat_id_param(req.params)
        message_id = int_param(req.params, "message_id")
        message = None if message_id is None else self.ledger.find(chat_id, message_id)
        if message is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        self.ledger.remove(message)
        return self._ok(True, message.message_id)

    def send_chat_action(self, req: _Request) -> ApiReply:
        self._open_chat(req.params)
        if req.params.get("action") not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return self._ok(True)

    def send_message_draft(self, req: _Request) -> ApiReply:
        chat_id = self._open_chat(req.params)
        if not is_private(chat_id):
            raise ApiError(400, "Bad Request: message drafts can be sent only to private chats")
        draft_id = int_param(req.params, "draft_id")
        if not draft_id:
            raise ApiError(400, "Bad Request: draft_id must be non-zero")
        _, text, _ = self._text(req.params)
        self.ledger.add_draft(SandboxDraft(req.now, chat_id, draft_id, text))
        return self._ok(True)

    # -- helpers -------------------------------------------------------------------------------

    def _open_chat(self, params: dict[str, Any]) -> str:
        """The chat_id of a call that writes to the chat: 403 if the user blocked the bot."""
        chat_id = chat_id_param(params)
        if chat_id in self.blocked:
            raise ApiError(403, BLOCKED)
        return chat_id

    def _text(self, params: dict[str, Any]) -> tuple[str, str, str | None]:
        """(raw text, visible text, canonical parse_mode), or the error Telegram gives."""
        raw = params.get("text")
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            raw = str(raw)
        if not isinstance(raw, str) or not raw.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if re.search("[\ud800-\udfff]", raw):
            raise ApiError(400, "Bad Request: text must be encoded in UTF-8")
        mode = params.get("parse_mode") or None
        if mode is not None:
            mode = PARSE_MODES.get(str(mode).lower())
            if mode is None:
                raise ApiError(400, "Bad Request: unsupported parse_mode")
        try:
            text = visible_text(raw, mode).strip(TRIMMED)
        except EntityParseError as exc:
            raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        if not text:
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > self.knobs.max_units:
            raise ApiError(400, "Bad Request: message is too long")
        return raw, text, mode

    def _take_budget(self, req: _Request, chat_id: str) -> None:
        retry_after = self.flood.acquire(req.bot_id, chat_id, req.now)
        if retry_after is not None:
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)

    @staticmethod
    def _ok(result: Any, message_id: int | None = None) -> ApiReply:
        return ApiReply(200, {"ok": True, "result": result}, message_id=message_id)

    @staticmethod
    def _bot_user(bot_id: int) -> dict[str, Any]:
        return {
            "id": bot_id,
            "is_bot": True,
            "first_name": "tokenrelay sandbox",
            "username": "tokenrelay_sandbox_bot",
        }

    def _message_json(self, message: SandboxMessage, bot_id: int) -> dict[str, Any]:
        chat_id: int | str = message.chat_id
        if re.fullmatch(r"-?\d+", message.chat_id):
            chat_id = int(message.chat_id)
        if is_private(message.chat_id):
            chat_type = "private"
        elif message.chat_id.startswith("-100") or message.chat_id.startswith("@"):
            chat_type = "supergroup"
        else:
            chat_type = "group"
        return {
            "message_id": message.message_id,
            "from": self._bot_user(bot_id),
            "chat": {"id": chat_id, "type": chat_type},
            "date": message.date,
            "text": message.text,
        }


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
    clients call ``f"{base_url}/bot{token}/{method}"``.
    """

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


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Serve the emulator until interrupted: ``python -m sandbox.telegram --port 8081``."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.telegram", description="Loopback Telegram Bot API emulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    defaults = Knobs()
    for name, parse in KNOB_PARSERS.items():
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=parse,
            default=getattr(defaults, name),
            help=f"(default: {getattr(defaults, name)})",
        )
    args = vars(parser.parse_args(argv))
    host, port = args.pop("host"), args.pop("port")
    try:
        emulator = TelegramEmulator(host, port, **args)
    except ValueError as exc:
        parser.error(str(exc))
    with emulator:
        print(f"Telegram sandbox listening on {emulator.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
