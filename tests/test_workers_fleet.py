"""Several workers, crashes and other brokers: one writer per stream, resumption in seconds."""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
import uuid

import pytest

from producers import StreamProducer
from tests.helpers import SAMPLE, emit_paced, tokens
from tests.procs import WorkerProcess
from tokenrelay.config import Settings
from tokenrelay.store import Keys, SentState, Store
from workers.lease import owner_token

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def own_queue(settings_env):
    """A queue only this test's subprocess workers consume, and a producer sending to it."""
    env = {**settings_env, "TOKENRELAY_QUEUE": f"tokenrelay-own-{uuid.uuid4().hex[:8]}"}
    producer = StreamProducer(Settings.from_env(env))
    workers: list[WorkerProcess] = []

    def spawn(name: str) -> WorkerProcess:
        w = WorkerProcess(env, env["TOKENRELAY_QUEUE"], name)
        workers.append(w)
        assert w.ready.wait(30), "".join(w.lines[-20:])
        return w

    yield producer, spawn
    producer.close()
    for w in workers:
        w.stop()


def test_lease_and_version_fence_off_a_stale_worker(producer, chat_id) -> None:
    from tokenrelay.store import Offsets

    stream = producer.start(channel="telegram", chat_id=chat_id)
    producer.store.close(stream.id)  # a closing stream: begin hands out its final pass
    store: Store = producer.store
    first, second = owner_token(), owner_token()
    begun = store.begin(stream.id, first, 200)
    assert begun.status == "ok"
    assert store.begin(stream.id, second, 200).status == "busy", "one writer at a time"
    version = begun.snapshot.sent.version
    store.redis.delete(Keys.of(stream.id).lease)  # the first owner's lease ran out
    taken = store.begin(stream.id, second, 5000)
    assert taken.status == "ok" and taken.snapshot.taken_over, "a take-over is known as one"
    assert not store.renew(stream.id, first, 5000)
    stale = SentState(version=version)
    zero = Offsets(0, 0, 0, 0)
    assert store.commit(stream.id, first, stale, zero, stamp=False) == -1, "a stale owner"
    assert store.commit(stream.id, second, stale, zero, stamp=False) == version + 1
    assert store.commit(stream.id, second, stale, zero, stamp=False) == -1, (
        "and nobody writes on top of a version it did not read"
    )
    assert not store.release(stream.id, first), "only the owner releases"
    assert store.release(stream.id, second)
    assert not store.begin(stream.id, first, 200).snapshot.taken_over, "a clean release"


def test_two_workers_never_duplicate_or_move_a_chat_backwards(own_queue, telegram) -> None:
    producer, spawn = own_queue
    spawn("alpha")
    spawn("beta")
    chats = [str(70_000 + i + int(time.time()) % 1000 * 100) for i in range(6)]
    streams = [producer.start(channel="telegram", chat_id=c, interval=0.1) for c in chats]
    threads = [
        threading.Thread(target=emit_paced, args=(s, SAMPLE, 300)) for s in streams
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s, chat in zip(streams, chats, strict=True):
        result = s.stop(timeout=30)
        assert result.all_sent
        [msg] = telegram.messages(chat)
        assert msg.text == SAMPLE.strip()
        texts = [t for _, t in msg.history]
        for before, after in itertools.pairwise(texts):
            assert len(after) >= len(before), "the chat never moves backwards"


def test_kill_9_of_the_flushing_worker_resumes_the_same_message(own_queue, telegram) -> None:
    producer, spawn = own_queue
    first = spawn("first")
    assert any("(thread)" in line for line in first.lines), "a bare worker uses the threads pool"
    chat = str(80_000 + int(time.time()) % 10_000)
    telegram.configure(latency=0.3)
    try:
        stream = producer.start(channel="telegram", chat_id=chat, interval=1.0)
        text = " ".join(f"word{i}" for i in range(400))
        emitter = threading.Thread(target=emit_paced, args=(stream, text, 80, 6))
        emitter.start()
        assert telegram.wait_for(lambda e: len(e.texts(chat)) == 1, timeout=10)
        second = spawn("second")
        lease = Keys.of(stream.id).lease
        deadline = time.monotonic() + 10
        doomed = None
        while doomed is None:  # kill whichever worker is in the middle of a pass right now
            holder = (producer.store.redis.get(lease) or b"").decode()
            doomed = next((w for w in (first, second) if f":{w.pid}:" in holder), None)
            assert time.monotonic() < deadline, "no worker ever held the stream"
            time.sleep(0.005)  # polls Redis for the lease owner; not a timing assumption
        doomed.kill()
        killed_at = time.monotonic()
        assert telegram.wait_for(
            lambda e: any(t > killed_at + 0.35 for t, _ in e.messages(chat)[0].history),
            timeout=10,
        )
        resumed = min(t for t, _ in telegram.messages(chat)[0].history if t > killed_at + 0.35)
        emitter.join()
        result = stream.stop(timeout=30)
    finally:
        telegram.configure(latency=0.0)
    print(f"kill -9 -> same message edited again after {resumed - killed_at:.2f} s")
    assert resumed - killed_at < 4.0, f"resumed after {resumed - killed_at:.2f} s"
    assert result.all_sent, result
    assert result.message_ids == ["1"], "the same message is edited, no second copy"
    assert telegram.texts(chat) == [text]


def _rabbitmq_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(
    not _rabbitmq_reachable(), reason="no RabbitMQ on 127.0.0.1:5672 (amqp broker test)"
)
def test_amqp_broker(settings_env, telegram) -> None:
    queue = f"tokenrelay-amqp-{uuid.uuid4().hex[:8]}"
    env = {
        **settings_env,
        "TOKENRELAY_BROKER_URL": os.environ.get(
            "TOKENRELAY_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"
        ),
        "TOKENRELAY_QUEUE": queue,
    }
    producer = StreamProducer(Settings.from_env(env))
    worker = WorkerProcess(env, queue, "rabbit")
    try:
        assert worker.ready.wait(30), "".join(worker.lines[-20:])
        chat = str(90_000 + int(time.time()) % 10_000)
        stream = producer.start(channel="telegram", chat_id=chat)
        for tok in tokens(SAMPLE):
            stream.emit(tok)
        result = stream.stop(timeout=30)
        assert result.all_sent
        assert telegram.texts(chat) == [SAMPLE.strip()]
    finally:
        producer.close()
        worker.stop()
