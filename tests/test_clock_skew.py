"""One clock (issue 6, item 8): every stored time and deadline is on Redis server TIME, so a
worker whose own clock is minutes off (libfaketime, both ways) still delivers exactly, keeps the
interval, lets a live stream through a quiet spell longer than the idle timeout, finalizes an
abandoned one on time, and does not trip the final-delivery deadline.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from producers import StreamProducer
from sandbox.telegram import TelegramEmulator
from tests.conftest import TEST_TOKEN
from tests.helpers import LoggedWorker, assert_exactly_once, emit_paced, worker_clock_offset
from tokenrelay.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
IDLE = 3.0
INTERVAL = 0.5


def _faked(offset: str) -> dict[str, str]:
    """The environment that skews a process's wall clock by ``offset`` (monotonic untouched)."""
    return {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": offset,
            "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def _skew_works() -> str | None:
    """None when libfaketime skews a child Python's clock, else why not."""
    if not LIBFAKETIME.exists():
        return f"{LIBFAKETIME} missing (apt-get install faketime)"
    probe = subprocess.run([sys.executable, "-c", "import time; print(time.time())"],
                           env={**os.environ, **_faked("-5m")}, capture_output=True, text=True)
    if probe.returncode != 0 or abs(float(probe.stdout or 0) - time.time() + 300) > 30:
        return f"libfaketime did not skew the clock: {probe.stderr.strip()[-200:]}"
    return None


pytestmark.append(pytest.mark.skipif(_skew_works() is not None, reason=str(_skew_works())))


def _text(chat: str, words: int) -> str:
    return f"reply for {chat}: " + " ".join(f"w{j}" for j in range(words))


@pytest.mark.parametrize("offset,seconds", [("-5m", -300), ("+5m", 300)])
def test_a_worker_minutes_off_keeps_every_promise(settings_env, offset, seconds) -> None:
    with TelegramEmulator(token=TEST_TOKEN, private_rate=50, private_burst=50) as telegram:
        queue = f"tokenrelay-skew-{uuid.uuid4().hex[:8]}"
        env = {**settings_env, "TOKENRELAY_QUEUE": queue,
               "TOKENRELAY_TELEGRAM_API_BASE": telegram.base_url,
               "TOKENRELAY_IDLE_TIMEOUT": str(IDLE),
               # finals queue for a budget of 1/s per chat: the deadline check runs, and a
               # clock read locally would find 5 minutes gone since the stop
               "TOKENRELAY_TELEGRAM_CHAT_RATE": "1", "TOKENRELAY_FINAL_DEADLINE": "60"}
        worker = LoggedWorker({**env, **_faked(offset)}, queue, "skewed")
        producer = StreamProducer(Settings.from_env(env))
        quitter = StreamProducer(Settings.from_env(env))
        try:
            worker.ready()
            skew = worker_clock_offset(worker)
            assert abs(skew - seconds) < 30, f"the worker's clock is {skew:+.0f} s, not {offset}"

            # an agent that goes away: its stream must be finalized by the watchdog, on time
            gone = quitter.start(channel="telegram", chat_id="98100")
            gone.emit(_text("98100", 10))
            quitter.close()

            chats = [str(98_000 + i) for i in range(3)]
            first = {c: _text(c, 25) for c in chats}
            second = {c: " then, after the tool call, " + _text(c, 25) for c in chats}
            streams = {c: producer.start(channel="telegram", chat_id=c, interval=INTERVAL)
                       for c in chats}

            def agent(chat: str) -> None:
                emit_paced(streams[chat], first[chat], per_second=60)
                time.sleep(IDLE + 1.5)  # the agent's tool call: silent longer than IDLE
                emit_paced(streams[chat], second[chat], per_second=60)

            agents = [threading.Thread(target=agent, args=(c,)) for c in chats]
            for t in agents:
                t.start()
            for t in agents:
                t.join()
            stopped_at = time.monotonic()
            results = {c: s.stop(timeout=30) for c, s in streams.items()}
            reasons = {c: producer.store.meta(s.id).get("close_reason") for c, s in
                       streams.items()}
            abandoned = producer.handle(gone.id).result(timeout=IDLE + 10)
            gone_meta = producer.store.meta(gone.id)
        finally:
            producer.close()
            worker.stop()
        # server times: the last sign of life -> the watchdog's close
        last = max(int(gone_meta["touched_ms"]), int(gone_meta["alive_ms"]))
        abandoned_took = (int(gone_meta["closed_ms"]) - last) / 1000
        print(f"\nworker clock {skew:+.0f} s: finals {[r.how for r in results.values()]}, "
              f"budget waits {[r.budget_waits for r in results.values()]}, abandoned stream "
              f"finalized {abandoned_took:.1f} s after its last beat (idle timeout {IDLE:g} s)")
        for c in chats:
            assert reasons[c] == "stop", "a live stream in a tool call was finalized early"
            result = results[c]
            assert result.error is None and result.how != "incomplete", result
            assert_exactly_once(telegram, c, first[c] + second[c], result)
            for message in telegram.messages(c):
                interim = [t for t, _ in message.history if t < stopped_at]
                gaps = [b - a for a, b in itertools.pairwise(interim)]
                assert all(g >= INTERVAL - 0.05 for g in gaps), (c, gaps)
        assert gone_meta["close_reason"] == "abandoned" and abandoned.all_sent, abandoned
        assert IDLE - 0.1 <= abandoned_took <= IDLE + 2.5, abandoned_took
        assert telegram.texts("98100") == [_text("98100", 10)]
