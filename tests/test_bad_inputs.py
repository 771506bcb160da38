"""Every bad input gets a clear error or a defined result, and loses no text."""

from __future__ import annotations

import pytest

from producers import StreamClosed, StreamTooLong, UnknownChannel
from tokenrelay.store import Keys

pytestmark = pytest.mark.integration


def test_unknown_channel(producer) -> None:
    with pytest.raises(UnknownChannel, match=r"unknown channel .smoke-signals.; known: .*telegram"):
        producer.start(channel="smoke-signals", chat_id="1")


@pytest.mark.parametrize("chat_id", [None, "", "  ", "abc", 1.5, True, "12 34"])
def test_missing_or_malformed_chat_id(producer, chat_id) -> None:
    with pytest.raises(ValueError, match="chat_id"):
        producer.start(channel="telegram", chat_id=chat_id)


def test_bad_options(producer, chat_id) -> None:
    with pytest.raises(ValueError, match="format"):
        producer.start(channel="telegram", chat_id=chat_id, format="rtf")
    with pytest.raises(ValueError, match="account"):
        producer.start(channel="telegram", chat_id=chat_id, account="../etc")
    with pytest.raises(ValueError, match="interval"):
        producer.start(channel="telegram", chat_id=chat_id, interval=0)
    with pytest.raises(ValueError, match="stream id"):
        producer.start(channel="telegram", chat_id=chat_id, stream_id="has space")


def test_duplicate_stream_id_is_refused(producer, chat_id) -> None:
    producer.start(channel="telegram", chat_id=chat_id, stream_id=f"dup-{chat_id}").stop()
    with pytest.raises(ValueError, match="already exists"):
        producer.start(channel="telegram", chat_id=chat_id, stream_id=f"dup-{chat_id}")


def test_non_str_tokens_are_refused_and_the_stream_goes_on(producer, telegram, chat_id) -> None:
    stream = producer.start(channel="telegram", chat_id=chat_id)
    stream.emit("ok")
    for bad in (None, 42, b"bytes", ["list"]):
        with pytest.raises(TypeError, match="str tokens"):
            stream.emit(bad)  # type: ignore[arg-type]
    stream.emit(" still ok")
    assert stream.stop(timeout=20).all_sent
    assert telegram.texts(chat_id) == ["ok still ok"]


def test_lone_surrogates_become_replacement_characters(producer, telegram, chat_id) -> None:
    stream = producer.start(channel="telegram", chat_id=chat_id)
    stream.emit("broken \ud800 text")
    assert stream.stop(timeout=20).all_sent
    assert telegram.texts(chat_id) == ["broken \ufffd text"]


def test_emit_after_stop_and_stop_twice(producer, telegram, chat_id) -> None:
    stream = producer.start(channel="telegram", chat_id=chat_id)
    stream.emit("done")
    first = stream.stop(timeout=20)
    with pytest.raises(StreamClosed, match="emit\\(\\) after stop\\(\\)"):
        stream.emit("more")
    assert stream.stop(timeout=20) == first
    assert telegram.texts(chat_id) == ["done"]


def test_a_10_mb_token_is_refused_whole_and_loses_nothing(producer, telegram, chat_id) -> None:
    stream = producer.start(channel="telegram", chat_id=chat_id)
    stream.emit("before")
    with pytest.raises(StreamTooLong, match="MAX_STREAM_CHARS"):
        stream.emit("x" * 10_000_000)
    stream.emit(" after")
    assert stream.stop(timeout=20).all_sent
    assert telegram.texts(chat_id) == ["before after"]


def test_every_stream_key_expires(producer, chat_id) -> None:
    stream = producer.start(channel="telegram", chat_id=chat_id)
    stream.emit("x")
    stream.tool_message("tool")
    stream.stop(timeout=20)
    k = Keys.of(stream.id)
    r = producer.store.redis
    for key in (k.meta, k.text, k.sent, k.marks, k.result):
        assert r.exists(key), key
        ttl = r.ttl(key)
        assert 0 < ttl <= producer.settings.result_ttl, f"{key}: TTL {ttl} s once finished"
    assert not r.exists(k.lease) and not r.exists(k.tick)
