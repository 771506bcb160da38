"""The ledger: what the platform holds (messages per chat, drafts) and every call it answered."""

from __future__ import annotations

import bisect
import re
import time
from dataclasses import dataclass
from operator import attrgetter

from sandbox.ledger import ChatLedger

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


class Ledger(ChatLedger[SandboxMessage, SandboxCall]):
    """What the platform holds: messages per chat, drafts and every call.

    All access goes through ``cond`` (a Condition over an RLock), notified on every change.
    """

    def __init__(self) -> None:
        super().__init__()
        self._drafts: dict[str, list[SandboxDraft]] = {}
        self._live: dict[str, SandboxDraft] = {}  #: chat -> the draft it shows now

    def forget(self) -> None:
        self._drafts.clear()
        self._live.clear()

    def add_message(
        self, chat_id: str, raw: str, text: str, parse_mode: str | None, now: float
    ) -> SandboxMessage:
        with self.cond:
            message = SandboxMessage(
                chat_id=chat_id,
                message_id=self.chat_size(chat_id) + 1,  # deleted messages stay in the chat
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
            return self.keep(chat_id, message)

    def find(self, chat_id: str, message_id: int) -> SandboxMessage | None:
        """The live message (not a copy), or None if it never existed or was deleted."""
        message = self.stored(chat_id, message_id)
        return None if message is None or message.deleted else message

    def edit(
        self, message: SandboxMessage, raw: str, text: str, parse_mode: str | None, now: float
    ) -> None:
        with self.cond:
            message.raw_text, message.parse_mode = raw, parse_mode
            self.shown(message, text, now)

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

    def drafts(self, chat_id: str) -> list[SandboxDraft]:
        with self.cond:
            return list(self._drafts.get(chat_id, []))
