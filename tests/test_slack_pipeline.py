"""End to end: producer -> Redis -> Celery worker -> Slack sandbox, judged by its ledger."""

from __future__ import annotations

import itertools

import pytest

from tests.helpers import (
    SAMPLE,
    assert_never_backwards,
    configured,
    emit_paced,
    first_429_and_later_successes,
    squash,
    stream_around_deletion,
    stream_reply,
    tokens,
)

pytestmark = pytest.mark.integration
_ids = itertools.count(1)


def _chat(kind: str = "C") -> str:
    return f"{kind}0TR{next(_ids):05d}"


def test_reply_grows_by_updates_then_lands_whole(producer, slack) -> None:
    chat = _chat()
    result = stream_reply(producer, "slack", chat, per_second=150, timeout=30)
    assert result.all_sent, result
    [message] = slack.messages(chat)
    assert message.text == SAMPLE.strip()
    assert result.message_ids == [f"1700000000.{message.message_id:06d}"]
    assert message.edits >= 2, "the reply grows while it is written"
    assert_never_backwards(message, "the chat never moves backwards", loose=True)


def test_markdown_is_sent_as_mrkdwn(producer, slack) -> None:
    chat = _chat()
    with producer.stream(channel="slack", chat_id=chat, format="markdown") as s:
        emit_paced(s, "Use **bold** & <tags>, `code`, [docs](https://x.io).", per_second=80)
    [message] = slack.messages(chat)
    assert message.raw_text == "Use *bold* &amp; &lt;tags&gt;, `code`, <https://x.io|docs>."
    assert message.text == "Use bold & <tags>, code, docs."


def test_long_reply_splits_into_messages_under_the_limit(producer, slack) -> None:
    chat = _chat()
    text = "\n\n".join(f"{i}. " + "words & more words " * 25 for i in range(20))  # ~9,500
    stream = producer.start(channel="slack", chat_id=chat, interval=0.2)
    for tok in tokens(text, 60):
        stream.emit(tok)
    result = stream.stop(timeout=60)
    assert result.all_sent, result
    messages = slack.messages(chat)
    assert len(messages) >= 3
    assert all(len(m.raw_text) <= 4000 for m in messages)
    assert squash("".join(m.text for m in messages)) == squash(text)
    assert slack.count(chat_id=chat, status=429) == 0


def test_a_429_is_waited_out_and_the_final_still_lands(producer, slack) -> None:
    chat = _chat()
    strict = {"update_per_minute": 12.0, "update_burst": 1}  # stricter than the client thinks
    with configured(slack, strict, {"update_per_minute": 600.0, "update_burst": 20}):
        result = stream_reply(producer, "slack", chat, per_second=30, interval=0.1)
    assert result.all_sent and result.rate_limited >= 1, result
    assert slack.texts(chat) == [SAMPLE.strip()]
    limited, later = first_429_and_later_successes(slack, chat)
    assert limited and later and later[0].t - limited[0].t >= limited[0].retry_after - 0.05


def test_deleted_message_is_sent_anew(producer, slack) -> None:
    chat = _chat()
    result = stream_around_deletion(
        producer, slack, "slack", chat, lambda: slack.delete(chat, 1)
    )
    assert result.all_sent and result.resent >= 1, result
    assert slack.texts(chat) == ["first part, second part"]


def test_removed_from_the_channel_is_a_clear_permanent_failure(producer, slack) -> None:
    chat = _chat()
    slack.kick(chat)
    stream = producer.start(channel="slack", chat_id=chat)
    stream.emit("hello?")
    result = stream.stop(timeout=30)
    assert not result.all_sent and result.how == "failed"
    assert "not_in_channel" in (result.error or "")
    assert slack.count(chat_id=chat) == 1, "permanent: never retried"


def test_server_errors_and_dropped_connections_are_retried(producer, slack) -> None:
    chat = _chat()
    faults = {"error_rate": 0.3, "drop_rate": 0.1, "seed": 7}
    with configured(slack, faults, {"error_rate": 0.0, "drop_rate": 0.0}):
        result = stream_reply(producer, "slack", chat, interval=0.1)
    assert result.all_sent, result
    assert slack.texts(chat) == [SAMPLE.strip()]
    assert slack.count(chat_id=None, status=500) + slack.count(fault="drop") >= 1


def test_native_stream_expiring_mid_reply_neither_loses_nor_repeats(producer, slack) -> None:
    chat = _chat("D")
    stream = producer.start(channel="slack", chat_id=chat, native=True, interval=0.1)
    stream.emit("The first half of the answer,")
    assert slack.wait_for(lambda e: e.streaming(chat), timeout=10), "a native stream started"
    stream.emit(" still streaming")
    assert slack.wait_for(lambda e: e.texts(chat) == ["The first half of the answer, still "
                                                      "streaming"], timeout=10)
    assert slack.expire_streams(chat) == 1  # Slack ends it during a long tool call
    stream.emit(" and the second half after the stream expired.")
    result = stream.stop(timeout=30)
    assert result.all_sent, result
    full = "The first half of the answer, still streaming and the second half after the " \
           "stream expired."
    assert slack.texts(chat) == [full]
    [message] = slack.messages(chat)
    assert_never_backwards(message, "the chat never moves backwards", loose=True)
    assert slack.count("chat.startStream", chat_id=chat) == 1
    assert slack.count("chat.appendStream", chat_id=chat) >= 1
    assert slack.count("chat.update", chat_id=chat) >= 1, "it went on with chat.update"
