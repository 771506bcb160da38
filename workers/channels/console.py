"""The console channel: whole messages printed to the worker's log, for local trials.

``producer.start(channel="console", chat_id="anything")`` needs no credentials. A log line can
never change, so the channel cannot edit: the core delivers the text so far at each tool-call
boundary and the rest at stop, as for webhooks. Each message is one INFO record of the
``tokenrelay.console`` logger: ``[console <chat>#<key>] <text>``.
"""

from __future__ import annotations

import itertools
import logging

from tokenrelay.specs.webhook import ConsoleSpec
from workers.channels.base import (
    NO_CALL,
    Budget,
    Call,
    Capabilities,
    Format,
    OpKind,
    WholeMessages,
)
from workers.planner.split import char_units

#: longest message, in characters (a log record stays readable)
MAX_CHARS = 4000

log = logging.getLogger("tokenrelay.console")

CAPABILITIES = Capabilities(can_edit=False, max_units=MAX_CHARS, units=char_units)


class ConsoleClient(WholeMessages):
    """Logs whole messages; never edits."""

    name = "console"
    capabilities = CAPABILITIES

    def __init__(self, account: str) -> None:
        self.account = account
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"ConsoleClient(account={self.account!r})"

    def budgets(
        self, chat_id: str, kind: OpKind = "send", message_id: str | None = None
    ) -> list[Budget]:
        return [Budget(f"console:{self.account}", "log", 1000.0, 100)]

    def send(
        self, chat_id: str, text: str, fmt: Format, final: bool = False, call: Call = NO_CALL
    ) -> str:
        # the core's per-segment key: unique, and the same when another worker logs it again
        message_id = f"{chat_id}#{call.key or next(self._ids)}"
        log.info("[console %s] %s", message_id, text)
        return message_id


def build(spec: ConsoleSpec, account: str) -> ConsoleClient:
    """A client for ``account``, from its settings (``spec.setting``)."""
    return ConsoleClient(account)


