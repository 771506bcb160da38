"""A channel that cannot edit gets whole messages: at each tool boundary and at stop."""

from __future__ import annotations

import pytest

from tests.conftest import WEBHOOK_TOKEN
from tests.helpers import tokens

pytestmark = pytest.mark.integration


def test_whole_messages_at_tool_boundaries_and_at_stop(producer, webhook, chat_id) -> None:
    stream = producer.start(channel="webhook", chat_id=chat_id, interval=0.1)
    for tok in tokens("Let me check the weather."):
        stream.emit(tok)
    stream.tool_message("🔧 weather…")
    # delivered at the boundary, while the agent is still working
    assert webhook.wait_for(lambda h: len(h.texts(chat_id)) == 1, timeout=10)
    assert webhook.texts(chat_id) == ["Let me check the weather.\n\n🔧 weather…"]
    for tok in tokens("It is sunny."):
        stream.emit(tok)
    result = stream.stop(timeout=20)
    assert result.all_sent and result.how == "sent_at_stop"
    assert webhook.texts(chat_id) == ["Let me check the weather.\n\n🔧 weather…", "It is sunny."]
    assert result.message_ids == [m.id for m in webhook.messages(chat_id)]
    assert result.edits == 0


def test_nothing_is_sent_between_boundaries(producer, webhook, chat_id) -> None:
    stream = producer.start(channel="webhook", chat_id=chat_id, interval=0.05)
    stream.emit("thinking out loud")
    stream.flush()
    assert not webhook.wait_for(lambda h: h.texts(chat_id), timeout=0.5)
    assert stream.stop(timeout=20).all_sent
    assert webhook.texts(chat_id) == ["thinking out loud"]


def test_a_long_final_is_split_into_whole_messages(producer, webhook, chat_id) -> None:
    text = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum " * 40 for i in range(12))
    with producer.stream(channel="webhook", chat_id=chat_id) as s:
        s.emit(text)
    sent = webhook.texts(chat_id)
    assert len(sent) == 2 and all(len(m) <= 4000 for m in sent)
    assert "".join(sent).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(
        " ", ""
    )


def test_the_webhook_url_and_token_never_show_in_errors(producer, webhook, chat_id, monkeypatch):
    monkeypatch.setenv("TOKENRELAY_WEBHOOK_OPS_URL", webhook.url)
    monkeypatch.setenv("TOKENRELAY_WEBHOOK_OPS_BOT_TOKEN", "wrong-" + WEBHOOK_TOKEN)
    stream = producer.start(channel="webhook", chat_id=chat_id, account="ops")
    stream.emit("hi")
    result = stream.stop(timeout=20)
    assert result.how == "failed" and "invalid token" in result.error
    assert WEBHOOK_TOKEN not in result.error and webhook.url not in result.error
