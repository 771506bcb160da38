"""Broker semantics (issue 6, item 9): the Redis transport redelivers an unacked message only
after ``visibility_timeout``, so (1) no countdown the code uses may come near it, (2) the stop
task's retry countdown stays bounded however often it was retried, and (3) stop tasks a
killed worker held (prefetched, unacked) must not wait for it: their schedule entries deliver
the streams within seconds.
"""

from __future__ import annotations

import ast
import re
import time
import uuid
from pathlib import Path

import pytest

import celeryconfig
from producers import StreamProducer
from sandbox.telegram import TelegramEmulator
from tests.conftest import TEST_TOKEN
from tests.faultproxy import FaultProxy
from tests.helpers import LoggedWorker, assert_exactly_once
from tokenrelay.backoff import backoff
from tokenrelay.config import Settings
from tokenrelay.names import STOP
from workers.tasks import MAX_RETRY_COUNTDOWN

ROOT = Path(__file__).resolve().parents[1]
VISIBILITY = float(celeryconfig.broker_transport_options["visibility_timeout"])
#: keyword arguments that delay a Celery message
DELAYS = {"countdown", "eta"}


def _delayed_publishes() -> list[tuple[str, int, str]]:
    """Every call in the shipped code that passes a countdown or an ETA: (file, line, call)."""
    found = []
    for package in ("workers", "producers", "tokenrelay"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and DELAYS & {k.arg for k in node.keywords}:
                    found.append((str(path.relative_to(ROOT)), node.lineno, ast.unparse(node)))
    return found


def test_no_countdown_comes_near_the_visibility_timeout() -> None:
    delayed = _delayed_publishes()
    # the only delayed message is the stop task's retry; watchdog, final deadline, flush
    # intervals and budgets wait on the Redis schedules, never on a broker countdown
    assert [(f, call) for f, _, call in delayed] == [
        ("workers/tasks.py", "self.retry(countdown=countdown)")
    ], delayed
    assert 0 < MAX_RETRY_COUNTDOWN <= VISIBILITY / 10
    for attempt in (0, 1, 5, 10, 31, 100, 10_000):
        assert all(backoff(attempt, 0.5, MAX_RETRY_COUNTDOWN) <= MAX_RETRY_COUNTDOWN
                   for _ in range(200))


@pytest.mark.integration
def test_stop_retries_stay_bounded_and_a_killed_workers_stop_tasks_do_not_wait(
    settings_env,
) -> None:
    redis_host, redis_port = settings_env["TOKENRELAY_REDIS_URL"].split("//")[1].split("/")[0] \
        .split(":")
    with TelegramEmulator(token=TEST_TOKEN, private_rate=100, private_burst=100) as telegram, \
            FaultProxy((redis_host, int(redis_port)), seed=3) as proxy:
        queue = f"tokenrelay-broker-{uuid.uuid4().hex[:8]}"
        env = {**settings_env, "TOKENRELAY_QUEUE": queue,
               "TOKENRELAY_TELEGRAM_API_BASE": telegram.base_url}
        # A keeps its stream state behind the proxy; the broker is reached directly
        a = LoggedWorker({**env, "TOKENRELAY_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0"},
                         queue, "held")
        producer = StreamProducer(Settings.from_env(env))
        b = None
        try:
            a.ready()
            # 1. A Redis error in the stop pass of a task already retried 60 times: the next
            #    countdown is still at most MAX_RETRY_COUNTDOWN (2**60 * 0.5 s uncapped)
            proxy.configure(drop_after_rate=1.0)
            ids = [f"broker-retry-{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
            for tid in ids:
                producer.app.send_task(STOP, args=[f"nosuch-{tid}"], queue=queue,
                                       task_id=tid, retries=60)
            lines = a.wait_line(r"stop pass failed \(\w+\); retrying in", timeout=40, count=3)
            waits = [float(re.search(r"retrying in ([\d.]+) s", line)[1]) for line in lines]
            assert all(0 < w <= MAX_RETRY_COUNTDOWN for w in waits), waits
            a.wait_line(r"stop_stream\[broker-retry-.*\] retry: Retry in", timeout=10, count=3)

            # 2. A holds stop tasks it cannot finish (its Redis answers nothing now) ...
            proxy.configure(drop_after_rate=0.0, stall_rate=1.0, stall=120.0)
            chats = [str(92_000 + i) for i in range(4)]
            texts = {c: f"reply for {c}: " + " ".join(f"w{j}" for j in range(40)) for c in chats}
            streams = {c: producer.start(channel="telegram", chat_id=c) for c in chats}
            for c, s in streams.items():
                s.emit(texts[c])
            handles = {c: s.stop(wait=False) for c, s in streams.items()}
            held = r"stop_stream\[(?!broker-retry-)[0-9a-f-]+\] received"
            a.wait_line(held, timeout=20, count=len(chats))
            assert not any(h.done() for h in handles.values()), "nobody could deliver yet"
            # ... and dies with them unacked: the transport would give them back in an hour
            a.kill()
            killed = time.monotonic()
            b = LoggedWorker(env, queue, "rescuer").ready()
            results = {c: h.result(timeout=30) for c, h in handles.items()}
            took = time.monotonic() - killed
        finally:
            producer.close()
            a.stop()
            if b is not None:
                b.stop()
        print(f"\nretry countdowns after 60 retries: {waits}; kill -9 -> all finals in "
              f"{took:.1f} s (visibility_timeout {VISIBILITY:.0f} s)")
        assert took < 20, f"the held streams waited {took:.1f} s"
        for c in chats:
            assert_exactly_once(telegram, c, texts[c], results[c])
