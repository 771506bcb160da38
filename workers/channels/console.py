"""The console channel: whole messages printed to the worker's log, for local trials.

``producer.start(channel="console", chat_id="anything")`` needs no credentials. A log line can
never change, so the channel cannot edit: the core delivers the text so far at each tool-call
boundary and the rest at stop, as for webhooks. Each message is one INFO record of the
``tokenrelay.console`` logger: ``[console <chat>#<key>] <text>``.
"""

from __future__ import annotations

import itertools
import logging

from workers.channels.base import (
    NO_CALL,
    Budget,
    Call,
    Capabilities,
    Format,
    Rejected,
    SpecBase,
    chat_id_text,
)
from workers.split import char_units

#: longest message, in characters (a log record stays readable)
MAX_CHARS = 4000

log = logging.getLogger("tokenrelay.console")

CAPABILITIES = Capabilities(can_edit=False, max_units=MAX_CHARS, units=char_units)


class ConsoleSpec(SpecBase):
    """The console as the producer sees it: any non-empty chat name of up to 200 characters."""

    name = "console"

    def normalize_chat_id(self, chat_id: object) -> str:
        text = chat_id_text(self.name, chat_id)
        if not text or len(text) > 200 or any(ord(c) < 32 for c in text):
            raise ValueError(f"invalid console chat_id {chat_id!r}: 1-200 printable characters")
        return text

    def build(self, account: str) -> ConsoleClient:
        return ConsoleClient(account)


class ConsoleClient:
    """Logs whole messages; never edits."""

    name = "console"
    capabilities = CAPABILITIES

    def __init__(self, account: str) -> None:
        self.account = account
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"ConsoleClient(account={self.account!r})"

    def budgets(self, chat_id: str) -> list[Budget]:
        return [Budget(f"console:{self.account}", "log", 1000.0, 100)]

    def send(
        self, chat_id: str, text: str, fmt: Format, final: bool = False, call: Call = NO_CALL
    ) -> str:
        # the core's per-segment key: unique, and the same when another worker logs it again
        message_id = f"{chat_id}#{call.key or next(self._ids)}"
        log.info("[console %s] %s", message_id, text)
        return message_id

    def edit(
        self,
        chat_id: str,
        message_id: str,
        text: str,
        fmt: Format,
        final: bool = False,
        call: Call = NO_CALL,
    ) -> None:
        raise Rejected("console messages cannot be edited")

    def delete(self, chat_id: str, message_id: str) -> None:
        raise Rejected("console messages cannot be deleted")

    def settles_differently(self, text: str, fmt: Format) -> bool:
        return False

    def continuation(self, previous: str, fmt: Format) -> str:
        return ""
