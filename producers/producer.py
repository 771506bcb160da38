"""StreamProducer: the entry point an agent process uses to start streams."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from celery import Celery
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from producers.aio import AsyncStream
from producers.errors import BackendUnavailable
from producers.pusher import Pusher
from producers.stream import StopHandle, Stream
from producers.waiter import ResultWaiter
from tokenrelay.config import Settings, redact_url
from tokenrelay.ids import validate_stream_id
from tokenrelay.names import STOP
from tokenrelay.specs import FORMATS, get_spec
from tokenrelay.store import Schedules, Store

log = logging.getLogger(__name__)

#: an account name (selects TOKENRELAY_<CHANNEL>_<ACCOUNT>_BOT_TOKEN)
ACCOUNT = re.compile(r"^[A-Za-z0-9_]{1,32}$")
#: a thread to reply in (Slack thread_ts and the like)
THREAD = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class StreamProducer:
    """Starts streams and moves their tokens to Redis; reads the same TOKENRELAY_* env as workers.

    >>> producer = StreamProducer()                                      # doctest: +SKIP
    >>> with producer.stream(channel="telegram", chat_id="42") as s:     # doctest: +SKIP
    ...     s.emit("Hello")
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: Store | None = None,
        app: Celery | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.store = store or Store.from_url(
            self.settings.redis_url, max_connections=_state_connections(self.settings),
            schedules=Schedules(self.settings.queue, self.settings.shards),
        )
        self.app = app or _sender_app(self.settings)
        self._pusher = Pusher(self.store, self.settings)
        self._waiter = ResultWaiter(self.store)

    def start(
        self,
        channel: str,
        chat_id: str | int,
        *,
        account: str = "default",
        format: str = "text",
        interval: float | None = None,
        stream_id: str | None = None,
        native: bool = False,
        thread_ts: str | None = None,
    ) -> Stream:
        """Register a new stream to ``chat_id`` on ``channel``; returns at once with a Stream.

        ``format``: ``text`` (as written), ``markdown`` (rendered for the platform, half-written
        markup healed while streaming) or ``html`` (the platform's own markup, passed through).
        ``interval``: seconds between edits (default TOKENRELAY_FLUSH_INTERVAL; 3 s in groups).
        ``native``: use the platform's native streaming where it allows it (Telegram drafts in
        private chats, Slack streams), falling back to send + edit. ``thread_ts``: reply in
        this thread (Slack).
        """
        spec = get_spec(channel, self.settings)
        if chat_id is None or (isinstance(chat_id, str) and not chat_id.strip()):
            raise ValueError("chat_id is required")
        chat = spec.normalize_chat_id(chat_id)
        if not isinstance(account, str) or not ACCOUNT.match(account):
            raise ValueError(f"invalid account {account!r}: 1-32 of [A-Za-z0-9_]")
        if format not in FORMATS:
            raise ValueError(f"invalid format {format!r}; one of {', '.join(FORMATS)}")
        if interval is not None and not (0.05 <= float(interval) <= 3600):
            raise ValueError(f"interval must be between 0.05 and 3600 s, not {interval!r}")
        if not isinstance(native, bool):
            raise ValueError(f"native must be True or False, not {native!r}")
        if thread_ts is not None and (
            not isinstance(thread_ts, str) or not THREAD.match(thread_ts)
        ):
            raise ValueError(f"invalid thread_ts {thread_ts!r}: 1-64 of [A-Za-z0-9._:-]")
        sid = validate_stream_id(stream_id) if stream_id is not None else uuid.uuid4().hex
        every = float(interval) if interval is not None else spec.interval_for(
            chat, self.settings.flush_interval
        )
        meta: dict[str, str | int] = {
            "notify": self._waiter.channel,
            "channel": channel,
            "account": account,
            "chat_id": chat,
            "format": format,
            "interval_ms": int(every * 1000),
            "idle_ms": int(self.settings.idle_timeout * 1000),
        }
        if native:
            meta["native"] = 1
        if thread_ts:
            meta["thread"] = thread_ts
        try:
            created = self.store.create(sid, meta, int(self.settings.stream_ttl))
            # the watchdog looks once the idle timeout could have passed (server time)
            self.store.schedule(
                [(sid, created + int(meta["idle_ms"]))], watch=True
            )
        except RedisError as exc:
            raise BackendUnavailable(f"Redis unreachable: {exc}") from None
        stream = Stream(
            sid, channel, chat, store=self.store, pusher=self._pusher, waiter=self._waiter,
            close=self._stop, max_chars=self.settings.max_stream_chars,
        )
        self._pusher.add(stream.buffer)
        return stream

    def handle(self, stream_id: str) -> StopHandle:
        """A StopHandle for a stream stopped elsewhere (another process, or the watchdog):
        ``handle(id).result(timeout)`` waits for its StopResult like ``stop()`` does."""
        return StopHandle(validate_stream_id(stream_id), self.store, self._waiter)

    @contextmanager
    def stream(self, channel: str, chat_id: str | int, **options: Any) -> Iterator[Stream]:
        """``with producer.stream(...) as s:`` stops the stream on exit, exceptions too."""
        s = self.start(channel, chat_id, **options)
        try:
            yield s
        finally:
            s.stop()

    async def astart(self, channel: str, chat_id: str | int, **options: Any) -> AsyncStream:
        """The asyncio twin of start()."""
        import asyncio

        return AsyncStream(await asyncio.to_thread(self.start, channel, chat_id, **options))

    @asynccontextmanager
    async def astream(
        self, channel: str, chat_id: str | int, **options: Any
    ) -> AsyncIterator[AsyncStream]:
        """``async with producer.astream(...) as s:`` stops the stream on exit."""
        s = await self.astart(channel, chat_id, **options)
        try:
            yield s
        finally:
            await s.stop()

    def close(self) -> None:
        """Stop the background pusher (buffered tokens of open streams are pushed first) and
        the stop listener."""
        self._pusher.close()
        self._waiter.close()

    def _stop(self, stream_id: str) -> None:
        """Close the stream, put its final pass on the schedule and send the stop task (the
        task runs it at once; the schedule makes sure it runs even if the task is lost)."""
        self._waiter.entry(stream_id)  # listen before the result can be published
        try:
            self.store.close(stream_id, "stop")
            self.store.schedule([(stream_id, 0)])
        except RedisError as exc:
            raise BackendUnavailable(f"Redis unreachable: {exc}") from None
        try:
            self.app.send_task(
                STOP, args=[stream_id], queue=self.settings.queue,
            )
        except (KombuError, OSError) as exc:
            # the schedule delivers the final anyway; say so, but do not fail the stop
            broker = redact_url(self.settings.broker_url)
            log.warning("stream %s: stop task not sent (broker at %s: %s); the workers' "
                        "schedule delivers it", stream_id, broker, exc)


#: broker connections a producer keeps (kombu's Redis transport opens up to three sockets for
#: each: measured, see tests/test_production_load.py)
BROKER_POOL = 2


def _state_connections(settings: Settings) -> int:
    """The state store's share of TOKENRELAY_REDIS_MAX_CONNECTIONS: all of it, less what the
    broker takes when the broker is a Redis too."""
    total = settings.redis_max_connections
    if settings.broker_url.startswith(("redis://", "rediss://", "unix://")):
        total -= 3 * BROKER_POOL
    return max(2, total)


def _sender_app(settings: Settings) -> Celery:
    """A Celery app that only sends tasks by name (the worker stack is not imported)."""
    app = Celery("tokenrelay", set_as_current=False)
    app.config_from_object("celeryconfig")
    # a producer with thousands of streams shares a few broker connections
    app.conf.update(
        broker_url=settings.broker_url, task_default_queue=settings.queue,
        broker_pool_limit=BROKER_POOL,
    )
    return app
