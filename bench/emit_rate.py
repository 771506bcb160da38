"""Emit rate of one producer thread: ``Stream.emit()`` vs one Celery task per token.

tokenrelay: the agent's loop calls ``emit()`` (an in-memory append) while the background pusher
moves batches to Redis; we also time until Redis holds every byte. Baseline: the obvious
design, ``app.send_task()`` per token to the same real Redis broker (a plain Celery app with
default settings). Both send to queues no worker consumes, so only the producer side is timed.
"""

from __future__ import annotations

import statistics
import time
import uuid

from bench.agents import reply_text, tokens
from bench.harness import Rig
from bench.report import Table

NAME = "emit"
TITLE = "Emit rate per producer thread"
#: tokens per stream (4 chars each: 800k chars, under TOKENRELAY_MAX_STREAM_CHARS)
PER_STREAM = 200_000
REPEATS = 3


def _ours(rig: Rig, total: int) -> tuple[float, float]:
    """(tokens/s of the emit loop, tokens/s until Redis holds all of it) for ``total`` tokens."""
    from producers import StreamProducer
    from tokenrelay.store import Keys

    producer = StreamProducer(rig.settings(TOKENRELAY_QUEUE=f"unconsumed-{uuid.uuid4().hex}"))
    try:
        toks = tokens(reply_text(PER_STREAM * 4, seed=1))
        streams = [producer.start("telegram", rig.chat()) for _ in range(total // PER_STREAM)]
        want = len("".join(toks).encode())
        t0 = time.perf_counter()
        for stream in streams:
            emit = stream.emit
            for tok in toks:
                emit(tok)
        emitted = time.perf_counter() - t0
        redis = producer.store.redis
        while any(redis.strlen(Keys.of(s.id).text) < want for s in streams):
            time.sleep(0.001)
        drained = time.perf_counter() - t0
    finally:
        producer.close()
    n = len(toks) * len(streams)
    return n / emitted, n / drained


def _celery_per_token(rig: Rig, total: int) -> float:
    """Tokens/s when every token is its own Celery task (``send_task`` to the Redis broker)."""
    from celery import Celery

    app = Celery("per-token-baseline", broker=rig.env["TOKENRELAY_BROKER_URL"])
    queue = f"unconsumed-{uuid.uuid4().hex}"
    toks = tokens(reply_text(total * 4, seed=2))
    sid = uuid.uuid4().hex
    app.send_task("baseline.append_token", args=[sid, "warm"], queue=queue)
    t0 = time.perf_counter()
    for tok in toks:
        app.send_task("baseline.append_token", args=[sid, tok], queue=queue)
    rate = len(toks) / (time.perf_counter() - t0)
    app.close()
    return rate


def run(rig: Rig) -> list[Table]:
    total = rig.scale(1_000_000, 200_000)
    per_task = rig.scale(3_000, 1_000)
    ours = [_ours(rig, total) for _ in range(REPEATS)]
    base = statistics.median(_celery_per_token(rig, per_task) for _ in range(REPEATS))
    emit_rate = statistics.median(r[0] for r in ours)
    redis_rate = statistics.median(r[1] for r in ours)
    table = Table(TITLE, baseline="Celery task/token", note=(
        f"Median of {REPEATS} runs: tokenrelay emits {total:,} 4-char tokens "
        f"over {total // PER_STREAM} stream(s) from one thread; the baseline sends {per_task:,} "
        "tasks. "
        "Target: ≥300k tokens/s and ≥100× the baseline."
    ))
    table.add("emit() loop (tokens/s)", emit_rate, base, "higher")
    table.add("all bytes in Redis (tokens/s)", redis_rate, base, "higher")
    table.add("cost per token (µs)", 1e6 / emit_rate, 1e6 / base, "lower", "{:,.2f}")
    return [table]
