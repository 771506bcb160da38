"""Production load, at the sizes the issue names: one bot with 150 chats at Telegram's real limits,
and 2,000 blocking stop() calls at once from one producer.

Each test runs a bare ``celery -A workers worker`` subprocess (the default worker a user starts)
against a Telegram sandbox of its own, and judges from the sandbox's ledger.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import threading
import time
import uuid
from collections.abc import Iterator

import psutil
import pytest

from producers import StreamProducer
from sandbox.telegram import TelegramEmulator
from tests.conftest import TEST_TOKEN
from tests.helpers import squash
from tests.procs import WorkerProcess
from tokenrelay.config import Settings
from tokenrelay.redis_server import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Fleet:
    """A sandbox, one bare worker process and a producer, wired through one environment."""

    def __init__(self, settings_env: dict[str, str], **knobs: object) -> None:
        # a Redis of its own: the connections it sees are this fleet's only
        self.redis = RedisServer().start()
        self.sandbox = TelegramEmulator(token=TEST_TOKEN, **knobs).start()
        self.env = {
            **settings_env,
            "TOKENRELAY_BROKER_URL": self.redis.url,
            "TOKENRELAY_REDIS_URL": self.redis.url,
            "TOKENRELAY_QUEUE": f"tokenrelay-load-{uuid.uuid4().hex[:8]}",
            "TOKENRELAY_TELEGRAM_API_BASE": self.sandbox.base_url,
        }
        self.workers: list[WorkerProcess] = []
        self.producer: StreamProducer | None = None

    @property
    def worker(self) -> WorkerProcess:
        return self.workers[0]

    def start(self, workers: int = 1, **env: str) -> Fleet:
        self.env.update(env)
        for i in range(workers):
            self.workers.append(WorkerProcess(self.env, self.env["TOKENRELAY_QUEUE"], f"load{i}"))
        for w in self.workers:
            assert w.ready.wait(30), "".join(w.lines[-20:])
        self.producer = StreamProducer(Settings.from_env(self.env))
        return self

    def close(self) -> None:
        if self.producer is not None:
            self.producer.close()
        for w in self.workers:
            w.stop()
        self.sandbox.stop()
        self.redis.stop()


@pytest.fixture
def fleet(settings_env) -> Iterator[Fleet]:
    made: list[Fleet] = []

    def make(**knobs: object) -> Fleet:
        f = Fleet(settings_env, **knobs)
        made.append(f)
        return f

    yield make  # type: ignore[misc]
    for f in made:
        f.close()


def _reply(i: int, words: int) -> list[str]:
    return [f"w{i}.{j} " for j in range(words)]


def test_one_bot_150_chats_shares_its_budget_fairly_and_firsts_go_first(fleet) -> None:
    n, rate = 150, 28.0
    f = fleet().start(  # the sandbox enforces Telegram's limits: 30/s per bot, 1/s per chat
        TOKENRELAY_FLUSH_INTERVAL="1.0",
        TOKENRELAY_TELEGRAM_CHAT_RATE="1.0",
        TOKENRELAY_TELEGRAM_GLOBAL_RATE=str(rate),
    )
    chats = [str(400_000 + i) for i in range(n)]
    streams = [f.producer.start(channel="telegram", chat_id=c) for c in chats]
    replies = [_reply(i, 480) for i in range(n)]  # 480 tokens at 60 tokens/s: 8 s of writing
    proc = psutil.Process(f.worker.pid)
    cpu0 = sum(proc.cpu_times()[:2])
    t0 = time.monotonic()
    for k in range(480 // 3):  # every 50 ms, three tokens for every stream: 60 tokens/s each
        for stream, words in zip(streams, replies, strict=True):
            for word in words[3 * k : 3 * k + 3]:
                stream.emit(word)
        time.sleep(max(0.0, t0 + (k + 1) * 0.05 - time.monotonic()))
    handles = [s.stop(wait=False) for s in streams]
    results = [h.result(timeout=90) for h in handles]
    elapsed = time.monotonic() - t0
    cpu = (sum(proc.cpu_times()[:2]) - cpu0) / elapsed
    sandbox = f.sandbox

    assert all(r.all_sent for r in results), [r for r in results if not r.all_sent][:3]
    for chat, words, result in zip(chats, replies, results, strict=True):
        shown = sandbox.texts(chat)  # long replies split into two messages at a word
        assert squash("".join(shown)) == squash("".join(words)), chat
        assert result.message_ids == [str(m.message_id) for m in sandbox.messages(chat)]
    too_many = sandbox.count(status=429)
    assert too_many <= 2, f"{too_many} HTTP 429s"

    firsts = sorted(min(t for t, _ in sandbox.messages(c)[0].history) for c in chats)
    first_p50 = statistics.median(firsts) - t0
    last_first = firsts[-1]
    calls = [c for c in sandbox.calls if c.status == 200 and c.t < last_first]
    edits_before = sum(1 for c in calls if c.method == "editMessageText")
    assert edits_before <= 0.1 * n, f"{edits_before} interim edits went before first sends"

    # fairness: while a stream was being written, its next edit came within ~N/rate
    written_until = t0 + 480 / 60
    worst = 0.0
    for chat in chats:
        times = [t for t, _ in sandbox.messages(chat)[0].history if t < written_until]
        worst = max([worst, *(b - a for a, b in itertools.pairwise(times))])
    bound = 2 * n / rate + 1.0
    print(f"\n150 chats: first text p50 {first_p50:.2f} s, worst gap between edits {worst:.2f} s "
          f"(bound {bound:.1f}), 429s {too_many}, worker CPU {cpu:.0%} of a core, "
          f"{elapsed:.1f} s in all")
    assert worst <= bound, f"a stream waited {worst:.1f} s for its next edit"


def test_four_workers_share_one_bots_budget_without_passing_it_or_starving_a_stream(
    fleet,
) -> None:
    n, rate = 40, 10.0
    f = fleet(global_rate=11.0, global_burst=20).start(  # the bot allows 11/s; we take 10
        workers=4,
        TOKENRELAY_FLUSH_INTERVAL="1.0",
        TOKENRELAY_TELEGRAM_CHAT_RATE="1.0",
        TOKENRELAY_TELEGRAM_GLOBAL_RATE=str(rate),
    )
    chats = [str(410_000 + i) for i in range(n)]
    streams = [f.producer.start(channel="telegram", chat_id=c) for c in chats]
    replies = [_reply(i, 480) for i in range(n)]  # 8 s of writing at 60 tokens/s
    t0 = time.monotonic()
    for k in range(480 // 3):
        for stream, words in zip(streams, replies, strict=True):
            for word in words[3 * k : 3 * k + 3]:
                stream.emit(word)
        time.sleep(max(0.0, t0 + (k + 1) * 0.05 - time.monotonic()))
    results = [h.result(timeout=120) for h in [s.stop(wait=False) for s in streams]]
    sandbox = f.sandbox
    assert all(r.all_sent for r in results)
    for chat, words in zip(chats, replies, strict=True):
        assert squash("".join(sandbox.texts(chat))) == squash("".join(words)), chat
    assert sandbox.count(status=429) <= 2, "four workers together stay within the bot's budget"
    worked = {w.pid for w in f.workers}
    assert len(worked) == 4
    written_until = t0 + 480 / 60
    worst = max(
        (b - a
         for chat in chats
         for a, b in itertools.pairwise(
             [t for t, _ in sandbox.messages(chat)[0].history if t < written_until]
         )),
        default=0.0,
    )
    print(f"\n4 workers, {n} chats at {rate:g}/s: worst gap {worst:.1f} s, "
          f"{sandbox.count(status=429)} 429s")
    assert worst <= 2 * n / rate + 1.0, f"a stream starved for {worst:.1f} s"


def _connections_to(port: int) -> int:
    return sum(
        1 for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


class Sampler:
    """Samples this process's connections to Redis every few ms while a load runs."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _connections_to(self.port))


def _lifted(fleet) -> Fleet:  # type: ignore[no-untyped-def]
    return fleet(global_rate=1e6, global_burst=1_000_000).start(
        TOKENRELAY_TELEGRAM_GLOBAL_RATE="100000", TOKENRELAY_FLUSH_INTERVAL="1.0"
    )


def _redis_port(env: dict[str, str]) -> int:
    return int(env["TOKENRELAY_REDIS_URL"].rsplit(":", 1)[1].split("/")[0])


def test_2000_threads_stop_at_once_on_a_bounded_number_of_connections(fleet) -> None:
    f = _lifted(fleet)
    n = 2000
    streams = [f.producer.start(channel="telegram", chat_id=str(500_000 + i)) for i in range(n)]
    results: list[object] = [None] * n
    go = threading.Barrier(n + 1)

    def stop(i: int) -> None:
        streams[i].emit(f"reply {i}")
        go.wait()
        try:
            results[i] = streams[i].stop(timeout=120)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=stop, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    with Sampler(_redis_port(f.env)) as sampler:
        go.wait()
        for t in threads:
            t.join()
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, f"{len(errors)} stop() calls failed, e.g. {errors[0]!r}"
    assert all(r.all_sent for r in results)  # type: ignore[attr-defined]
    assert f.sandbox.texts("500123") == ["reply 123"]
    print(f"\n{n} blocking stop() at once: peak {sampler.peak} Redis connections")
    assert sampler.peak <= 16, f"{sampler.peak} connections"


def test_2000_async_stops_and_takes_on_a_bounded_number_of_connections(fleet) -> None:
    f = _lifted(fleet)
    n = 2000

    async def run() -> list[object]:
        streams = [
            await f.producer.astart(channel="telegram", chat_id=str(600_000 + i))
            for i in range(n)
        ]
        for i, s in enumerate(streams):
            s.emit(f"async reply {i}")
        return await asyncio.gather(*(s.stop(timeout=120) for s in streams),
                                    return_exceptions=True)

    with Sampler(_redis_port(f.env)) as sampler:
        results = asyncio.run(run())
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} failed, e.g. {errors[0]!r}"
    assert f.sandbox.texts("601999") == ["async reply 1999"]

    # take() from 2,000 threads at once: the same bounded pool
    streams = [f.producer.start(channel="telegram", chat_id=str(700_000 + i), interval=30)
               for i in range(n)]
    taken: list[object] = [None] * n

    def take(i: int) -> None:
        streams[i].emit(f"kept by the agent {i}")
        try:
            taken[i] = streams[i].take(timeout=60)
        except Exception as exc:
            taken[i] = exc

    threads = [threading.Thread(target=take, args=(i,)) for i in range(n)]
    with Sampler(_redis_port(f.env)) as take_sampler:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not [t for t in taken if isinstance(t, Exception)]
    peak = max(sampler.peak, take_sampler.peak)
    print(f"\n{n} async stops + {n} takes: peak {peak} Redis connections")
    assert peak <= 16, f"{peak} connections"
