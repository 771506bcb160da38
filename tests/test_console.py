"""The console channel: whole messages in the worker's log (its ledger is the log)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from tokenrelay.config import Settings
from tokenrelay.specs import SPECS, ConsoleSpec
from workers.channels import build_client
from workers.channels.base import Call, Rejected
from workers.channels.console import ConsoleClient


def test_sends_log_whole_messages_and_never_edit(caplog) -> None:
    client = ConsoleClient("default")
    assert not client.capabilities.can_edit
    with caplog.at_level(logging.INFO, logger="tokenrelay.console"):
        message_id = client.send("room", "Hello there", "text", call=Call(key="k" * 25))
    assert message_id == "room#" + "k" * 25
    assert caplog.messages == [f"[console {message_id}] Hello there"]
    with pytest.raises(Rejected):
        client.edit("room", message_id, "Hello there!", "text")


def test_any_printable_chat_name_and_no_credentials() -> None:
    spec = ConsoleSpec(Settings())
    assert SPECS["console"] is ConsoleSpec
    assert spec.normalize_chat_id("anything at all") == "anything at all"
    for bad in ("", "a\nb", "x" * 201):
        with pytest.raises(ValueError, match="console chat_id"):
            spec.normalize_chat_id(bad)
    assert isinstance(build_client(spec, "whoever"), ConsoleClient)


class LogLedger(logging.Handler):
    """What the console showed: its log lines, with a wait on new ones."""

    def __init__(self, chat: str) -> None:
        super().__init__(logging.INFO)
        self.prefix = f"[console {chat}#"
        self.lines: list[str] = []
        self.cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        if line.startswith(self.prefix):
            with self.cond:
                self.lines.append(line.split("] ", 1)[1])
                self.cond.notify_all()

    def wait_for(self, predicate, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self.lines), timeout)


@pytest.fixture
def console_log() -> Iterator[LogLedger]:
    logger = logging.getLogger("tokenrelay.console")
    ledger = LogLedger("console-trial-1")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(ledger)
    yield ledger
    logger.removeHandler(ledger)
    logger.setLevel(level)


@pytest.mark.integration
def test_a_stream_prints_at_tool_boundaries_and_at_stop(producer, console_log) -> None:
    stream = producer.start(channel="console", chat_id="console-trial-1", interval=0.1)
    stream.emit("Let me look that up.")
    stream.tool_message("🔍 searching…")
    # printed at the boundary, while the agent still works
    assert console_log.wait_for(lambda lines: len(lines) == 1, timeout=10)
    stream.emit("Found it: 42.")
    result = stream.stop(timeout=20)

    assert result.all_sent and result.how == "sent_at_stop", result
    assert console_log.lines == ["Let me look that up.\n\n🔍 searching…", "Found it: 42."]
    assert len(result.message_ids) == 2 and result.edits == 0
