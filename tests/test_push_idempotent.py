"""Pushes are applied once: a batch whose answer was lost is sent again, and Redis keeps one copy.

A fault proxy sits between the producer and Redis and cuts the connection right after
forwarding a command (Redis acted; the producer never hears it), so the producer (and
redis-py's own retry) sends the same numbered chunks again.
"""

from __future__ import annotations

import pytest

from producers import BackendUnavailable, StreamProducer
from tests.faultproxy import FaultProxy
from tests.helpers import tokens
from tokenrelay.config import Settings

pytestmark = pytest.mark.integration

TEXT = " ".join(f"token{i}" for i in range(400))


def _retrying(call):  # type: ignore[no-untyped-def]
    for _ in range(50):
        try:
            return call()
        except BackendUnavailable:
            continue
    raise AssertionError("Redis stayed unreachable through the proxy")


def test_batches_resent_after_a_lost_answer_never_double_text(settings_env, worker, telegram):
    host, port = settings_env["TOKENRELAY_REDIS_URL"].split("//", 1)[1].split("/")[0].split(":")
    with FaultProxy((host, int(port)), seed=11) as proxy:
        env = {**settings_env, "TOKENRELAY_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0"}
        producer = StreamProducer(Settings.from_env(env))
        try:
            stream = producer.start(channel="telegram", chat_id="98801", interval=0.2)
            proxy.configure(drop_after_rate=0.3)
            for i, tok in enumerate(tokens(TEXT, 7)):
                stream.emit(tok)
                if i % 10 == 9:
                    _retrying(stream.flush)  # one pipeline of numbered chunks each time
            result = _retrying(lambda: stream.stop(timeout=30))
        finally:
            proxy.configure(drop_after_rate=0.0)
            producer.close()
    assert proxy.counts["drop_after"] >= 5, proxy.counts
    assert result.all_sent, result
    assert telegram.texts("98801") == [TEXT], "every chunk shows exactly once"
