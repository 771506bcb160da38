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
    from workers.state import Keys, Store

    with RedisServer() as server:  # our own server: SCRIPT FLUSH touches nobody else's
        store = Store.from_url(server.url)
        store.create("s1", {"interval_ms": 1000}, 60)
        assert store.push_many([("s1", b"one", False, "t1")], 100) == [0]
        store.redis.script_flush()
        assert store.push_many([("s1", b" two", False, "t2")], 100) == [-1]
        assert store.redis.get(Keys.of("s1").text) == b"one two"


def test_a_dead_broker_is_a_clear_error_not_a_hang(redis_url) -> None:
    env = {"TOKENRELAY_BROKER_URL": "redis://:pw@127.0.0.1:1/0", "TOKENRELAY_REDIS_URL": redis_url}
    producer = StreamProducer(Settings.from_env(env))
    try:
        t0 = time.monotonic()
        with pytest.raises(BackendUnavailable, match="broker unreachable") as info:
            producer.start(channel="telegram", chat_id="42")
        assert time.monotonic() - t0 < 15
        assert "pw" not in str(info.value)
    finally:
        producer.close()
