"""Celery tasks: thin shells around ``workers.flusher``. Arguments are stream ids only.

Interim flushes are not tasks: each worker's flush engine runs them from the shared schedules
(``workers.engine``). The stop task runs a stream's final pass at once; when that pass must
wait (a busy lease, a rate limit, a server error), the stream stays on the schedule and the
engine finishes it, so the task never sleeps and never waits on a long countdown.
"""

from __future__ import annotations

import logging

from celery import Task
from celery.exceptions import Ignore
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from tokenrelay.backoff import backoff
from tokenrelay.ids import validate_stream_id
from tokenrelay.names import STOP
from workers import runtime
from workers.app import app

log = logging.getLogger(__name__)

#: longest countdown of a stop retry after a Redis or broker error, seconds (well below the
#: Redis transport's visibility_timeout, so a retry is never redelivered as a copy)
MAX_RETRY_COUNTDOWN = 30.0
#: request fields that make Celery publish further tasks; producers never set them
_LINKS = ("callbacks", "errbacks", "chain", "chord")


class StopTask(Task):
    """Refuses a message a producer would never send before its body runs (the broker is
    shared with whoever can reach it): it is logged, acked and dropped, never executed."""

    def before_start(self, task_id: str, args: object, kwargs: dict[str, object]) -> None:
        reason = _refusal(self.request, args, kwargs)
        if reason is not None:
            # unset, so that Celery publishes none of the tasks a forged message links
            self.request.update(dict.fromkeys(_LINKS))
            log.warning("refused stop task %s: %s", _preview(task_id), reason)
            raise Ignore(reason)


def _refusal(request: object, args: object, kwargs: dict[str, object]) -> str | None:
    """Why a stop message is not one a producer sends, or None when it is."""
    linked = [name for name in _LINKS if getattr(request, name, None)]
    if linked:
        return f"it links other tasks ({', '.join(linked)})"
    if not isinstance(args, list | tuple):
        return f"its arguments are not a list: {_preview(args)}"
    unknown = sorted(map(_preview, set(kwargs) - {"stream_id"}))
    if unknown:
        return f"unknown keyword arguments {', '.join(unknown)}"
    given = [*args, *kwargs.values()]
    if len(given) != 1:
        return f"it takes one stream id, got {len(given)} arguments"
    try:
        validate_stream_id(given[0])
    except ValueError:
        return f"not a stream id: {_preview(given[0])}"
    return None


def _preview(value: object, limit: int = 80) -> str:
    """A log-safe repr of untrusted input: escaped by repr, cut at ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


@app.task(name=STOP, base=StopTask, bind=True, ignore_result=True, max_retries=None)
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
