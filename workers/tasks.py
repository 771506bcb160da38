"""Celery tasks: thin shells around ``workers.flusher``. Arguments are stream ids only.

Interim flushes are not tasks: each worker's flush engine runs them from the shared schedules
(``workers.engine``). The stop task runs a stream's final pass at once; when that pass must
wait (a busy lease, a rate limit, a server error), the stream stays on the schedule and the
engine finishes it, so the task never sleeps and never waits on a long countdown.
"""

from __future__ import annotations

import logging

from celery import Task
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from workers import runtime
from workers.app import app
from workers.backoff import backoff
from workers.names import STOP
from workers.state import validate_stream_id

log = logging.getLogger(__name__)

#: longest countdown of a stop retry after a Redis or broker error, seconds (well below the
#: Redis transport's visibility_timeout, so a retry is never redelivered as a copy)
MAX_RETRY_COUNTDOWN = 30.0


@app.task(name=STOP, bind=True, ignore_result=True, max_retries=None)
def stop_stream(self: Task, stream_id: str) -> str:
    """Final pass: deliver whatever is unsent, then publish the StopResult."""
    sid = validate_stream_id(stream_id)
    flusher = runtime.flusher()
    try:
        nxt = flusher.run(sid)
        if nxt.result is None and nxt.due_ms >= 0:
            flusher.store.schedule([(sid, nxt.due_ms)])
    except (RedisError, KombuError, OSError) as exc:
        countdown = max(0.1, backoff(self.request.retries, 0.5, MAX_RETRY_COUNTDOWN))
        log.warning("stream %s: stop pass failed (%s); retrying in %.1f s",
                    sid, type(exc).__name__, countdown)
        raise self.retry(countdown=countdown) from None
    return nxt.status
