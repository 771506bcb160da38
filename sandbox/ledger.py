"""The ledger every emulator keeps: what each chat shows (with every text each message showed)
and every call it answered.

A platform's ledger subclasses :class:`ChatLedger` with its own message and call types and adds
how messages are created (its ids, its extra fields); reading, edits' history, deletion,
recording and the JSON view (``ledger()`` in sandbox/registry.py) are the same for all.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["ChatLedger", "LedgerCall", "LedgerMessage"]


class LedgerMessage(Protocol):
    """What the ledger reads and changes of a platform's message dataclass."""

    message_id: Any
    text: str
    edits: int
    deleted: bool
    updated_at: float
    history: list[tuple[float, str]]


class LedgerCall(Protocol):
    """What the ledger reads of a platform's call dataclass."""

    method: str
    status: int


M = TypeVar("M", bound=LedgerMessage)
C = TypeVar("C", bound=LedgerCall)


class ChatLedger(Generic[M, C]):
    """Messages per chat (in the order sent) and every call.

    All access goes through ``cond`` (a Condition over an RLock), notified on every change, so
    ``wait_for`` predicates are re-checked whenever the ledger changes.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.RLock())
        self._chats: dict[str, dict[Any, M]] = {}
        self._calls: list[C] = []

    def clear(self) -> None:
        with self.cond:
            self._chats.clear()
            self._calls.clear()
            self.forget()
            self.cond.notify_all()

    def forget(self) -> None:
        """Drop the platform's own records on ``clear()`` (the lock is held)."""

    def keep(self, chat_id: str, message: M) -> M:
        """Store a new message of the chat."""
        with self.cond:
            self._chats.setdefault(chat_id, {})[message.message_id] = message
            self.cond.notify_all()
            return message

    def chat_size(self, chat_id: str) -> int:
        """How many messages the chat ever had (deleted ones too)."""
        with self.cond:
            return len(self._chats.get(chat_id, {}))

    def stored(self, chat_id: str, message_id: Any) -> M | None:
        """The live message (not a copy), deleted ones too, or None."""
        with self.cond:
            return self._chats.get(chat_id, {}).get(message_id)

    def shown(self, message: M, text: str, now: float) -> None:
        """The message now shows ``text`` (an edit at ``now``)."""
        with self.cond:
            message.text = text
            message.edits += 1
            message.updated_at = now
            message.history.append((now, text))
            self.cond.notify_all()

    def remove(self, message: M) -> None:
        with self.cond:
            message.deleted = True
            self.cond.notify_all()

    def record(self, call: C) -> None:
        with self.cond:
            self._calls.append(call)
            self.cond.notify_all()

    def copy(self, message: M) -> M:
        """A copy of ``message`` that later changes leave alone."""
        return replace(message, history=list(message.history))  # type: ignore[type-var]

    def messages(self, chat_id: str, include_deleted: bool = False) -> list[M]:
        """Copies of the chat's messages in the order they were sent."""
        with self.cond:
            return [
                self.copy(m)
                for m in self._chats.get(chat_id, {}).values()
                if include_deleted or not m.deleted
            ]

    def calls(self) -> list[C]:
        with self.cond:
            return list(self._calls)

    def snapshot(self) -> dict[str, Any]:
        """The JSON view: ``{"chats": {chat: [{message_id, text, edits, deleted}]}, "calls":
        [{method, status, count}], "total_calls": n}``."""
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
