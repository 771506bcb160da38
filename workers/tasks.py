"""Celery tasks: thin shells around ``workers.flusher``. Arguments are stream ids only."""

from __future__ import annotations

from collections.abc import Callable

from celery import Task

from workers import runtime
from workers.app import app
from workers.flusher import Flusher, Outcome
from workers.state import StreamNotFound, validate_stream_id

#: task names producers enqueue by (stable public names, seen in Flower)
FLUSH = "tokenrelay.flush_stream"
STOP = "tokenrelay.stop_stream"
WATCH = "tokenrelay.watch_stream"


def _run(step: Callable[[Flusher, str], Outcome], stream_id: str) -> Outcome:
    """Run one Flusher step; a stream whose keys expired is simply done."""
    try:
        return step(runtime.flusher(), validate_stream_id(stream_id))
    except StreamNotFound:
        return Outcome("idle")


@app.task(name=FLUSH, bind=True, ignore_result=True)
def flush_stream(self: Task, stream_id: str) -> str:
    """Debounced interim flush: edit the chat up to the text written so far."""
    task_id = self.request.id or ""
    outcome = _run(lambda f, sid: f.flush(sid, task_id), stream_id)
    if outcome.action in ("flush_again", "busy"):
        # the chain's next hop: its task id is what the stream's tick now names
        flush_stream.apply_async((stream_id,), countdown=outcome.delay, task_id=outcome.next_id)
    return outcome.action


@app.task(name=STOP, bind=True, ignore_result=True, max_retries=None)
def stop_stream(self: Task, stream_id: str) -> str:
    """Final flush: deliver whatever is unsent, then publish the StopResult."""
    outcome = _run(Flusher.stop, stream_id)
    if outcome.action == "busy":
        # flushes hold a lease for one HTTP call: look again soon, backing off towards the
        # holder's remaining lease time (a crashed holder's lease simply runs out)
        raise self.retry(countdown=min(outcome.delay, 0.02 * 2 ** min(self.request.retries, 8)))
    if outcome.action == "retry":
        raise self.retry(countdown=outcome.delay)
    return outcome.action


@app.task(name=WATCH, ignore_result=True)
def watch_stream(stream_id: str) -> str:
    """Watchdog: finalize the stream if its producer stopped writing without stopping it."""
    outcome = _run(Flusher.watch, stream_id)
    if outcome.action in ("retry", "busy"):
        # still active, or its final delivery is held back: look again then
        watch_stream.apply_async((stream_id,), countdown=max(outcome.delay, 0.05))
    return outcome.action
