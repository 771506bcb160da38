"""The ledger: what the platform holds (messages per chat, drafts) and every call it answered."""

from __future__ import annotations

import bisect
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Any

__all__ = ["Ledger", "SandboxCall", "SandboxDraft", "SandboxMessage", "normalise_chat_id"]


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
        self._live: dict[str, SandboxDraft] = {}  #: chat -> the draft it shows now

    def clear(self) -> None:
        with self.cond:
            self._chats.clear()
            self._calls.clear()
            self._drafts.clear()
            self._live.clear()
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
            self._live[draft.chat_id] = draft
            self.cond.notify_all()

    def end_draft(self, chat_id: str) -> None:
        """A real message was sent: the chat's draft preview is gone."""
        with self.cond:
            if self._live.pop(chat_id, None) is not None:
                self.cond.notify_all()

    def live_draft(self, chat_id: str, now: float, ttl: float) -> SandboxDraft | None:
        """The draft the chat shows at ``now``: the latest update, unless a message replaced
        it or it is older than ``ttl`` seconds (drafts are ephemeral)."""
        with self.cond:
            draft = self._live.get(chat_id)
            return draft if draft is not None and now - draft.t <= ttl else None

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
