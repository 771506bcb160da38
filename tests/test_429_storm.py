"""A 429 storm on one chat (issue 6): the sandbox's own flood control answers a group chat with
``retry_after`` of several seconds on every call beyond its budget while ten other chats stream.
The others finish promptly and exactly; the stormy chat's final is waited out as a scheduled
retry (never dropped, no thread asleep through it).

``TOKENRELAY_TEST_STORM_RETRY_AFTER`` sets the storm's retry_after (default 8 s; 60 s is the
production case the issue names, too slow for CI).
"""

from __future__ import annotations

import os
import threading
import time
import uuid

import psutil
import pytest

from producers import StreamProducer
from sandbox.telegram import TelegramEmulator
from tests.conftest import TEST_TOKEN
from tests.helpers import (
    LoggedWorker,
    assert_exactly_once,
    assert_retry_after_waited,
    calls_in,
    emit_paced,
)
from tokenrelay.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RETRY_AFTER = float(os.environ.get("TOKENRELAY_TEST_STORM_RETRY_AFTER", "8"))
STORM = "-97000"
CALM = [str(97_001 + i) for i in range(10)]


def _text(chat: str) -> str:
    return f"reply for {chat}: " + " ".join(f"w{j}" for j in range(50))


def test_a_429_storm_on_one_chat_delays_nobody_else_and_its_final_still_lands(
    settings_env,
) -> None:
    # the group's bucket refills one call per RETRY_AFTER s: every call beyond it gets a 429
    # with retry_after up to RETRY_AFTER s (the sandbox's flood control, as Telegram answers)
    with TelegramEmulator(token=TEST_TOKEN, group_per_minute=60.0 / RETRY_AFTER, group_burst=1,
                          private_rate=20, private_burst=20, global_rate=1000,
                          global_burst=1000) as telegram:
        queue = f"tokenrelay-storm-{uuid.uuid4().hex[:8]}"
        env = {**settings_env, "TOKENRELAY_QUEUE": queue,
               "TOKENRELAY_TELEGRAM_API_BASE": telegram.base_url,
               # the worker's own group budget is looser than the platform's: it meets the 429s
               "TOKENRELAY_TELEGRAM_GROUP_RATE_PER_MINUTE": "120"}
        worker = LoggedWorker(env, queue, "storm")
        producer = StreamProducer(Settings.from_env(env))
        try:
            worker.ready()
            proc = psutil.Process(worker.pid)
            streams = {c: producer.start(channel="telegram", chat_id=c, interval=0.3)
                       for c in [STORM, *CALM]}
            writers = [threading.Thread(target=emit_paced, args=(s, _text(c), 40))
                       for c, s in streams.items()]
            for t in writers:
                t.start()
            for t in writers:
                t.join()
            assert telegram.count(status=429, chat_id=STORM) >= 1, "the storm is on"
            storm_handle = streams[STORM].stop(wait=False)
            stormed_at = time.monotonic()
            cpu0, threads0 = sum(proc.cpu_times()[:2]), proc.num_threads()

            handles = {c: streams[c].stop(wait=False) for c in CALM}
            calm = {c: h.result(timeout=20) for c, h in handles.items()}
            calm_took = time.monotonic() - stormed_at
            storm_open_then = not storm_handle.done()

            storm = storm_handle.result(timeout=RETRY_AFTER * 3 + 20)
            storm_took = time.monotonic() - stormed_at
            cpu = (sum(proc.cpu_times()[:2]) - cpu0) / storm_took
            threads = proc.num_threads()
        finally:
            producer.close()
            worker.stop()
        print(f"\n429 storm (retry_after <= {RETRY_AFTER:g} s): 10 calm finals in "
              f"{calm_took:.2f} s, the stormy final after {storm_took:.1f} s "
              f"(open when the calm ones were done: {storm_open_then}), worker CPU "
              f"{cpu:.0%} of a core, threads {threads0} -> {threads}")
        assert calm_took < 3.0, f"the calm chats waited {calm_took:.1f} s for their finals"
        for c in CALM:
            assert_exactly_once(telegram, c, _text(c), calm[c])
            assert telegram.count(status=429, chat_id=c) == 0, c
        assert storm_open_then, "the stormy final was waiting while the calm ones landed"
        assert storm_took >= 1.0, "it waited for its retry_after"
        assert storm.rate_limited >= 1, storm
        assert_exactly_once(telegram, STORM, _text(STORM), storm)
        assert_retry_after_waited(calls_in(telegram, STORM), "retry_after was waited out")
        # waiting is scheduled, not slept: the worker idles while the storm's final waits
        assert cpu < 0.5, f"worker CPU {cpu:.0%} of a core while one final waited"
