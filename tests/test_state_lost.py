"""Redis lost a stream's state (eviction, a restart without persistence): the producer hears it
at once and plainly, and no worker sends the text again as a new message.

Judged from the sandbox's ledger; the worker is the session's in-process worker, or a bare
worker subprocess on a redis-server of the test's own (restarted without persistence, and run
with an eviction policy the worker must warn about).
"""

from __future__ import annotations

import time
import uuid

import pytest

from producers import StopTimeout, StreamClosed, StreamProducer
from sandbox.telegram import TelegramEmulator
from tests.conftest import TEST_TOKEN
from tests.helpers import LoggedWorker, OwnRedis, stream_reply, wait_quiet
from tokenrelay.config import Settings
from tokenrelay.store import Keys

pytestmark = pytest.mark.integration

BEFORE = "Text the chat shows before Redis forgets the stream."


def _keys(stream_id: str) -> list[str]:
    k = Keys.of(stream_id)
    return [k.meta, k.text, k.marks, k.sent, k.tick, k.lease, k.result, k.orphans]


def _assert_lost_at_once(stream, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    result = stream.stop(timeout=timeout)
    took = time.monotonic() - t0
    assert result.how == "lost" and not result.all_sent, result
    assert "stream state lost" in (result.error or ""), result
    assert took < 2.0, f"stop() took {took:.1f} s to say the state is lost (timeout {timeout})"


def _shown_once(telegram, chat: str) -> None:  # type: ignore[no-untyped-def]
    assert telegram.texts(chat) == [BEFORE], "the chat keeps what it showed, nothing more"
    assert telegram.count(method="sendMessage", chat_id=chat) == 1, "no new message"


def test_deleted_keys_make_stop_say_lost_at_once_and_nothing_is_resent(
    producer, telegram, chat_id
) -> None:
    stream = producer.start(channel="telegram", chat_id=chat_id, interval=0.1)
    stream.emit(BEFORE)
    assert telegram.wait_for(lambda e: e.texts(chat_id) == [BEFORE], timeout=10)
    wait_quiet(producer.store, [stream.id])  # the pass that showed it recorded it too
    producer.store.redis.delete(*_keys(stream.id))  # what an eviction of the stream does
    with pytest.raises(StreamClosed, match="state lost"):
        stream.emit(" and the rest")
        stream.flush()
    _assert_lost_at_once(stream)
    # the workers have looked at every schedule since: a whole other stream went through
    assert stream_reply(producer, "telegram", str(int(chat_id) + 500_000), "a barrier").all_sent
    _shown_once(telegram, chat_id)


def test_an_evicted_sent_state_alone_also_ends_as_lost_at_once(
    producer, telegram, chat_id
) -> None:
    stream = producer.start(channel="telegram", chat_id=chat_id, interval=0.1)
    stream.emit(BEFORE)
    assert telegram.wait_for(lambda e: e.texts(chat_id) == [BEFORE], timeout=10)
    wait_quiet(producer.store, [stream.id])  # the pass that showed it recorded it too
    producer.store.redis.delete(Keys.of(stream.id).sent)
    try:
        _assert_lost_at_once(stream, timeout=8)
    except StopTimeout as exc:
        raise AssertionError(f"stop() never said the state is lost: {exc}") from None
    finally:
        _shown_once(telegram, chat_id)


def test_a_restart_without_persistence_ends_streams_as_lost_and_a_worker_warns_of_eviction(
    settings_env,
) -> None:
    with OwnRedis("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru") as redis_srv, \
            TelegramEmulator(token=TEST_TOKEN, private_rate=100, private_burst=100) as telegram:
        queue = f"tokenrelay-lost-{uuid.uuid4().hex[:8]}"
        env = {
            **settings_env,
            "TOKENRELAY_BROKER_URL": redis_srv.url,
            "TOKENRELAY_REDIS_URL": redis_srv.url,
            "TOKENRELAY_QUEUE": queue,
            "TOKENRELAY_TELEGRAM_API_BASE": telegram.base_url,
        }
        worker = LoggedWorker(env, queue, "lost")
        producer = None
        try:
            worker.ready()
            worker.wait_line(r"WARNING.*maxmemory-policy is 'allkeys-lru'.*noeviction", 5)
            producer = StreamProducer(Settings.from_env(env))
            chat = "91001"
            stream = producer.start(channel="telegram", chat_id=chat, interval=0.1)
            stream.emit(BEFORE)
            assert telegram.wait_for(lambda e: e.texts(chat) == [BEFORE], timeout=10)
            redis_srv.restart()  # no AOF, no RDB: every key is gone
            with pytest.raises(StreamClosed, match="state lost"):
                stream.emit(" and the rest")
                stream.flush()
            _assert_lost_at_once(stream)
            # the worker came back to the restarted Redis and delivers new streams
            again = stream_reply(producer, "telegram", "91002", "after the restart", timeout=30)
            assert again.all_sent and telegram.texts("91002") == ["after the restart"]
            _shown_once(telegram, chat)
        finally:
            if producer is not None:
                producer.close()
            worker.stop()
