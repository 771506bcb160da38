"""The stop task never vanishes (issue 6, item 6): Redis errors inside the final pass, a Redis
restart with AOF mid-stream, and a 10 s outage of a broker that is not the state store; each
stream still ends with its whole text in the chat, once.

Bare ``celery -A workers worker`` subprocesses, sandboxes of their own, judged from the ledger.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from producers import StreamProducer
from sandbox.telegram import TelegramEmulator
from tests.conftest import TEST_TOKEN
from tests.faultproxy import FaultProxy
from tests.helpers import LoggedWorker, OwnRedis, assert_exactly_once, emit_paced, wait_quiet
from tokenrelay.config import Settings
from tokenrelay.names import STOP
from tokenrelay.store import Keys

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _text(chat: str, words: int = 60) -> str:
    return f"reply for {chat}: " + " ".join(f"w{j}" for j in range(words))


@pytest.fixture
def sandbox() -> Iterator[TelegramEmulator]:
    with TelegramEmulator(token=TEST_TOKEN, private_rate=100, private_burst=100,
                          global_rate=1000, global_burst=1000) as emu:
        yield emu


def _env(settings_env: dict[str, str], sandbox: TelegramEmulator, **extra: str) -> dict[str, str]:
    queue = f"tokenrelay-survive-{uuid.uuid4().hex[:8]}"
    return {**settings_env, "TOKENRELAY_QUEUE": queue,
            "TOKENRELAY_TELEGRAM_API_BASE": sandbox.base_url, **extra}


@pytest.fixture
def proxied(settings_env, sandbox):  # type: ignore[no-untyped-def]
    """A worker whose stream state goes through a fault proxy (the broker does not), and a
    producer that reaches Redis directly."""
    host, port = settings_env["TOKENRELAY_REDIS_URL"].split("//")[1].split("/")[0].split(":")
    with FaultProxy((host, int(port)), seed=21) as proxy:
        env = _env(settings_env, sandbox)
        worker = LoggedWorker({**env, "TOKENRELAY_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0"},
                              env["TOKENRELAY_QUEUE"], "survive")
        producer = StreamProducer(Settings.from_env(env))
        try:
            worker.ready()
            yield proxy, worker, producer
        finally:
            producer.close()
            worker.stop()


def test_redis_errors_inside_the_stop_pass_are_retried_to_one_final(proxied, sandbox) -> None:
    proxy, worker, producer = proxied
    chats = [str(93_000 + i) for i in range(3)]
    streams = {c: producer.start(channel="telegram", chat_id=c, interval=0.2) for c in chats}
    for c, s in streams.items():
        s.emit(_text(c))
    assert sandbox.wait_for(lambda e: all(e.texts(c) for c in chats), timeout=10)
    wait_quiet(producer.store, [s.id for s in streams.values()])
    for s in streams.values():
        s.emit(" and the last words")
    # every answer from Redis is lost now (the commands still run): the stop passes fail
    proxy.configure(drop_after_rate=1.0)
    handles = {c: s.stop(wait=False) for c, s in streams.items()}
    for s in streams.values():
        worker.wait_line(rf"stream {s.id}: stop pass failed \(\w+Error\); retrying in",
                         timeout=20)
    retried = worker.wait_line(r"stop_stream\[([0-9a-f-]+)\] retry: Retry in", count=3)
    proxy.configure(drop_after_rate=0.0)
    results = {c: h.result(timeout=30) for c, h in handles.items()}
    for line in retried:  # the retried tasks themselves came back and ended
        tid = re.search(r"stop_stream\[([0-9a-f-]+)\]", line)[1]
        worker.wait_line(rf"stop_stream\[{tid}\] succeeded", timeout=30)
    assert proxy.counts["drop_after"] > 0
    for c in chats:
        assert_exactly_once(sandbox, c, _text(c) + " and the last words", results[c])


def test_a_redis_error_after_a_send_leaves_no_copy(proxied, sandbox) -> None:
    proxy, worker, producer = proxied
    chat = "93100"
    sandbox.configure(latency=1.0)  # the send is in flight for a second
    stream = producer.start(channel="telegram", chat_id=chat, interval=0.2)
    stream.emit(_text(chat))
    sent = Keys.of(stream.id).sent
    deadline = time.monotonic() + 10
    while producer.store.redis.hget(sent, "sending") is None:  # intent.lua: the send goes out
        assert time.monotonic() < deadline, "no send went out"
        time.sleep(0.005)
    proxy.configure(drop_after_rate=1.0)
    assert sandbox.wait_for(lambda e: e.texts(chat), timeout=10)
    worker.wait_line(rf"stream {stream.id}: pass failed", timeout=20)
    proxy.configure(drop_after_rate=0.0)
    sandbox.configure(latency=0.0)
    result = stream.stop(timeout=30)
    assert_exactly_once(sandbox, chat, _text(chat), result)


def test_a_redis_restart_with_aof_mid_stream_loses_nothing(settings_env, sandbox) -> None:
    with OwnRedis("--appendonly", "yes", "--appendfsync", "everysec") as redis_srv:
        env = _env(settings_env, sandbox, TOKENRELAY_BROKER_URL=redis_srv.url,
                   TOKENRELAY_REDIS_URL=redis_srv.url)
        worker = LoggedWorker(env, env["TOKENRELAY_QUEUE"], "aof")
        producer = StreamProducer(Settings.from_env(env))
        try:
            worker.ready()
            chats = [str(94_000 + i) for i in range(5)]
            texts = {c: _text(c, 120) for c in chats}
            streams = {c: producer.start(channel="telegram", chat_id=c, interval=0.2)
                       for c in chats}
            writers = [threading.Thread(target=emit_paced, args=(streams[c], texts[c], 150))
                       for c in chats]
            for t in writers:
                t.start()
            assert sandbox.wait_for(lambda e: all(e.texts(c) for c in chats), timeout=10)
            restarted = time.monotonic()
            redis_srv.restart()
            for t in writers:
                t.join()
            assert time.monotonic() - restarted > 0.5, "the restart came while they streamed"
            results = {c: s.stop(timeout=40) for c, s in streams.items()}
        finally:
            producer.close()
            worker.stop()
    for c in chats:
        assert_exactly_once(sandbox, c, texts[c], results[c])


def test_workers_consume_stop_tasks_again_after_a_10_s_broker_outage(
    settings_env, sandbox
) -> None:
    with OwnRedis() as broker:
        env = _env(settings_env, sandbox, TOKENRELAY_BROKER_URL=broker.url)
        assert env["TOKENRELAY_REDIS_URL"] != broker.url
        worker = LoggedWorker(env, env["TOKENRELAY_QUEUE"], "outage")
        producer = StreamProducer(Settings.from_env(env))
        try:
            worker.ready()
            broker.down()
            down_at = time.monotonic()
            worker.wait_line(r"(?i)(connection to broker lost|cannot connect to redis)",
                             timeout=15)
            # meanwhile the schedule still finishes what is stopped (the stop task is lost)
            during = producer.start(channel="telegram", chat_id="95000")
            during.emit(_text("95000"))
            outage_result = during.stop(timeout=30)
            time.sleep(max(0.0, 10.0 - (time.monotonic() - down_at)))  # the outage lasts 10 s
            broker.up()
            # streams only a stop task can finish: closed, but on no schedule
            chats = [str(95_001 + i) for i in range(3)]
            streams = {c: producer.start(channel="telegram", chat_id=c) for c in chats}
            for c, s in streams.items():
                s.emit(_text(c))
                s.flush()
            assert sandbox.wait_for(lambda e: all(e.texts(c) for c in chats), timeout=10)
            tids = {}
            for c, s in streams.items():
                producer._pusher.discard(s.id)
                producer.store.close(s.id)
                tids[c] = f"after-outage-{c}-{uuid.uuid4().hex[:6]}"
                producer.app.send_task(STOP, args=[s.id], queue=env["TOKENRELAY_QUEUE"],
                                       task_id=tids[c])
            for tid in tids.values():
                worker.wait_line(rf"stop_stream\[{tid}\] received", timeout=40)
                worker.wait_line(rf"stop_stream\[{tid}\] succeeded", timeout=20)
            results = {c: producer.store.result(s.id) for c, s in streams.items()}
        finally:
            producer.close()
            worker.stop()
    assert_exactly_once(sandbox, "95000", _text("95000"), outage_result)
    for c in chats:
        assert results[c] is not None, f"the stop task of {c} did not publish its result"
        assert results[c]["all_sent"], results[c]
        assert sandbox.texts(c) == [_text(c)]

