"""Prometheus metrics of a worker: this module owns every metric, the flusher and the engine
only report events to it (one call each), and ``serve`` exposes ``/metrics``.

With ``PROMETHEUS_MULTIPROC_DIR`` set (a pool that forks), prometheus_client keeps the values
in files in that directory and a scrape adds up every process's; otherwise they live in this
process. The schedule gauges are read from Redis on each scrape (``Store.schedule_sizes``), so
every worker reports the same deployment-wide figure: aggregate them with ``max``, not ``sum``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import start_http_server as _start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from redis.exceptions import RedisError

from tokenrelay.config import Settings
from tokenrelay.store import Snapshot, Store
from workers.channels import errors as errs

log = logging.getLogger(__name__)

#: seconds: from the newest text a pass read to the platform's answer that shows it
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)
#: seconds: from the producer's stop() to the published result
STOP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
#: seconds one platform call takes (in-call retries included)
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

PASSES = Counter(
    "tokenrelay_passes", "Passes that held a stream's lease (interim or final)",
    ["channel", "kind"],
)
TAKEOVERS = Counter(
    "tokenrelay_lease_takeovers", "Passes that took a stream over from a holder that never "
    "released it (killed, or its lease ran out mid-call)", ["channel"],
)
OPS = Counter(
    "tokenrelay_ops", "Platform calls (send, edit, delete) by outcome: ok, not_modified, gone, "
    "parse_error, rate_limited, transient, ambiguous, expired, too_long, rejected, failed, "
    "error, aborted", ["channel", "kind", "outcome"],
)
CALL_SECONDS = Histogram(
    "tokenrelay_call_seconds", "Duration of one platform call", ["channel", "kind"],
    buckets=CALL_BUCKETS,
)
RATE_LIMITED = Counter(
    "tokenrelay_rate_limited", "Platform answers that asked to wait (HTTP 429)", ["channel"]
)
RETRIES = Counter(
    "tokenrelay_retries", "Sends and edits that failed transiently and are retried by a later "
    "pass", ["channel", "kind"],
)
AMBIGUOUS = Counter(
    "tokenrelay_ambiguous_sends", "Sends whose answer was lost (the platform may have acted)",
    ["channel"],
)
UPDATE_LAG = Histogram(
    "tokenrelay_update_lag_seconds", "From the newest text a pass read reaching Redis to the "
    "platform showing it (emit -> visible, approximately)", ["channel"], buckets=LAG_BUCKETS,
)
BUDGET_WAITS = Counter(
    "tokenrelay_budget_waits", "Calls held back by a rate budget (the stream takes a ticket)",
    ["channel", "priority"],
)
FINISHED = Counter(
    "tokenrelay_finished_streams", "Streams whose final pass produced a result, by how",
    ["channel", "how"],
)
STOP_TO_FINAL = Histogram(
    "tokenrelay_stop_to_final_seconds", "From the stream's stop (close) to its final result",
    ["channel"], buckets=STOP_BUCKETS,
)
UNSENT_CHARS = Counter(
    "tokenrelay_unsent_chars", "Characters the chat does not show when a stream finished",
    ["channel"],
)
ABANDONED = Counter(
    "tokenrelay_abandoned_streams", "Streams the watchdog finalized (no tokens, no heartbeat)"
)
ENGINE_ERRORS = Counter(
    "tokenrelay_engine_errors", "Unexpected errors of the flush engine", ["where"]
)
BUSY = Gauge(
    "tokenrelay_engine_busy_threads", "Flush engine threads running a pass",
    multiprocess_mode="livesum",
)

#: channel errors by the outcome they count as; the first matching class wins (subclasses first)
_OUTCOMES: tuple[tuple[type[Exception], str], ...] = (
    (errs.NotModified, "not_modified"),
    (errs.MessageGone, "gone"),
    (errs.ParseError, "parse_error"),
    (errs.RateLimited, "rate_limited"),
    (errs.Ambiguous, "ambiguous"),
    (errs.CallExpired, "expired"),
    (errs.TransientFailure, "transient"),
    (errs.TooLong, "too_long"),
    (errs.Rejected, "rejected"),
    (errs.PermanentFailure, "failed"),
    (errs.ChannelError, "error"),
)


def _channel(snap: Snapshot) -> str:
    return snap.meta.get("channel", "")


def outcome_of(exc: BaseException) -> str:
    """The outcome label of a call that raised ``exc`` (``aborted``: not a platform answer,
    e.g. the lease ran out before the call could be made)."""
    return next((name for cls, name in _OUTCOMES if isinstance(exc, cls)), "aborted")


# events the flusher reports --------------------------------------------------------------------
def pass_begun(snap: Snapshot) -> None:
    """A pass holds the stream's lease (a take-over when its previous holder never let go)."""
    PASSES.labels(_channel(snap), "final" if snap.status == "closing" else "interim").inc()
    if snap.taken_over:
        TAKEOVERS.labels(_channel(snap)).inc()


@contextmanager
def call(snap: Snapshot, kind: str) -> Iterator[None]:
    """Count one platform call (send, edit, delete) by its outcome and time it; the channel's
    error passes through unchanged."""
    channel = _channel(snap)
    started = time.monotonic()
    try:
        yield
    except Exception as exc:
        outcome = outcome_of(exc)
        if outcome == "rate_limited":
            RATE_LIMITED.labels(channel).inc()
        elif isinstance(exc, errs.TransientFailure) and kind != "delete":
            RETRIES.labels(channel, kind).inc()
            if outcome == "ambiguous" and kind == "send":
                AMBIGUOUS.labels(channel).inc()
        OPS.labels(channel, kind, outcome).inc()
        raise
    else:
        OPS.labels(channel, kind, "ok").inc()
    finally:
        CALL_SECONDS.labels(channel, kind).observe(time.monotonic() - started)


def shown(snap: Snapshot, now_ms: int) -> None:
    """A send or edit made the pass's text visible at ``now_ms`` (server clock)."""
    touched = int(snap.meta.get("touched_ms") or snap.now_ms)
    UPDATE_LAG.labels(_channel(snap)).observe(max(0, now_ms - touched) / 1000.0)


def budget_wait(snap: Snapshot, priority: bool) -> None:
    """A call was held back by a rate budget (``priority``: a final or a first send)."""
    BUDGET_WAITS.labels(_channel(snap), "final_or_first" if priority else "interim").inc()


def finished(snap: Snapshot, result: dict[str, Any], now_ms: int) -> None:
    """The final pass produced ``result`` (a StopResult dict) at ``now_ms`` (server clock)."""
    channel = _channel(snap)
    FINISHED.labels(channel, str(result.get("how", ""))).inc()
    UNSENT_CHARS.labels(channel).inc(int(result.get("unsent_chars") or 0))
    closed = int(snap.meta.get("closed_ms") or now_ms)
    STOP_TO_FINAL.labels(channel).observe(max(0, now_ms - closed) / 1000.0)


# events the engine reports ---------------------------------------------------------------------
def busy(delta: int) -> None:
    """``delta`` engine threads started (+) or ended (-) a pass."""
    BUSY.inc(delta)


def engine_error(where: str) -> None:
    """The engine's loop (``loop``) or a pass (``pass``) raised unexpectedly."""
    ENGINE_ERRORS.labels(where).inc()


def abandoned() -> None:
    """The watchdog finalized a stream whose producer went silent."""
    ABANDONED.inc()


# the /metrics endpoint -------------------------------------------------------------------------
class SchedulesCollector:
    """``tokenrelay_scheduled_streams{schedule}`` read from Redis at scrape time, and
    ``tokenrelay_redis_up`` (0 when Redis did not answer the scrape)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("tokenrelay_redis_up", "Redis answered this scrape (1) or not (0)")
        scheduled = GaugeMetricFamily(
            "tokenrelay_scheduled_streams", "Streams on the deployment's schedules: watch (every "
            "unfinished stream) and due "
            "(something to deliver)", labels=["schedule"],
        )
        try:
            sizes = self.store.schedule_sizes()
        except (RedisError, OSError) as exc:
            log.warning("metrics: schedules not read: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for name, size in sorted(sizes.items()):
            scheduled.add_metric([name], size)
        yield up
        yield scheduled


_server_lock = threading.Lock()
_server: tuple[Any, Any, CollectorRegistry, SchedulesCollector] | None = None


def serve(settings: Settings, store: Store) -> int | None:
    """Serve ``/metrics`` on ``settings.metrics_port`` (0: not at all); returns the port, or
    None when off or the port cannot be bound (logged: delivery goes on without metrics)."""
    global _server
    if not settings.metrics_port:
        return None
    with _server_lock:
        if _server is not None:
            return settings.metrics_port
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        else:
            registry = REGISTRY
        schedules = SchedulesCollector(store)
        registry.register(schedules)  # type: ignore[arg-type]
        try:
            server, thread = _start_http_server(
                settings.metrics_port, settings.metrics_host, registry
            )
        except OSError as exc:
            registry.unregister(schedules)  # type: ignore[arg-type]
            log.error("metrics: cannot serve on %s:%d (%s); running without /metrics",
                      settings.metrics_host, settings.metrics_port, exc)
            return None
        _server = (server, thread, registry, schedules)
    log.info("metrics: serving /metrics on %s:%d", settings.metrics_host, settings.metrics_port)
    return settings.metrics_port


def stop_serving() -> None:
    """Close the ``/metrics`` endpoint, if this process serves one."""
    global _server
    with _server_lock:
        running, _server = _server, None
    if running is not None:
        server, thread, registry, schedules = running
        server.shutdown()
        server.server_close()
        thread.join(5)
        registry.unregister(schedules)
