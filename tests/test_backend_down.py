"""A dead Redis surfaces as a clear error on stop(), not a hang; emit() never raises for it."""

from __future__ import annotations

import time

import pytest

from producers import BackendUnavailable, StreamProducer
from tokenrelay.config import Settings
from tokenrelay.redis_server import RedisServer

pytestmark = pytest.mark.integration


def test_stop_raises_backend_unavailable_when_redis_died() -> None:
    server = RedisServer().start()
    env = {"TOKENRELAY_BROKER_URL": server.url, "TOKENRELAY_TELEGRAM_BOT_TOKEN": "1:x"}
    producer = StreamProducer(Settings.from_env(env))
    try:
        stream = producer.start(channel="telegram", chat_id="42")
        stream.emit("hello")
        server.stop()
        stream.emit(" world")  # still instant: only the in-process buffer
        t0 = time.monotonic()
        with pytest.raises(BackendUnavailable, match="Redis unreachable"):
            stream.stop(timeout=5)
        assert time.monotonic() - t0 < 15
    finally:
        producer.close()
        server.stop()


def test_start_fails_fast_without_redis() -> None:
    env = {"TOKENRELAY_BROKER_URL": "redis://127.0.0.1:1/0"}
    producer = StreamProducer(Settings.from_env(env))
    try:
        with pytest.raises(BackendUnavailable):
            producer.start(channel="telegram", chat_id="42")
    finally:
        producer.close()


def test_push_survives_redis_forgetting_its_scripts() -> None:
    from tokenrelay.store import Keys, Store

    with RedisServer() as server:  # our own server: SCRIPT FLUSH touches nobody else's
        store = Store.from_url(server.url)
        store.create("s1", {"interval_ms": 1000}, 60)
        assert store.push_many([("s1", b"one", False, 1)], 100)[0][0] == "armed"
        store.redis.script_flush()
        assert store.push_many([("s1", b" two", False, 2)], 100) == [("quiet", -1)]
        assert store.redis.get(Keys.of("s1").text) == b"one two"


def test_a_chunk_resent_after_a_lost_answer_is_applied_once() -> None:
    from tokenrelay.store import Keys, Store

    with RedisServer() as server:
        store = Store.from_url(server.url)
        store.create("s2", {"interval_ms": 1000}, 60)
        store.push_many([("s2", b"one", False, 1), ("s2", b" two", True, 2)], 100)
        # the answer was lost: the pusher sends the same numbered chunks again
        store.push_many([("s2", b"one", False, 1), ("s2", b" two", True, 2)], 100)
        store.push_many([("s2", b" three", False, 3)], 100)
        assert store.redis.get(Keys.of("s2").text) == b"one two three"
        assert store.redis.lrange(Keys.of("s2").marks, 0, -1) == [b"7"]


def test_a_dead_broker_does_not_stop_delivery(settings, worker, telegram, caplog) -> None:
    from dataclasses import replace

    stuck = StreamProducer(replace(settings, broker_url="redis://:pw@127.0.0.1:1/0"))
    try:
        stream = stuck.start(channel="telegram", chat_id="99301")
        stream.emit("the broker is down, the schedule still delivers")
        t0 = time.monotonic()
        result = stream.stop(timeout=30)
        assert result.all_sent and time.monotonic() - t0 < 30
        assert telegram.texts("99301") == ["the broker is down, the schedule still delivers"]
        assert "stop task not sent" in caplog.text and ":pw@" not in caplog.text
    finally:
        stuck.close()
