"""Read-only views of the stored streams for monitoring (``workers.metrics``, ``tokenrelay
status`` and ``inspect``): several streams in a few pipelined round trips."""

from __future__ import annotations

import json
from typing import Any

import redis

from tokenrelay.ids import validate_stream_id
from tokenrelay.store.keys import Keys, Schedules, StreamNotFound
from tokenrelay.store.sent import SentState


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class StreamViews:
    """The Store's monitoring side (a mixin: it reads ``redis`` and ``schedules``)."""

    redis: redis.Redis
    schedules: Schedules

    def server_now_ms(self) -> int:
        sec, usec = self.redis.time()
        return int(sec) * 1000 + int(usec) // 1000

    def schedule_sizes(self) -> dict[str, int]:
        """Entries on the deployment's schedules, in one round trip: ``due`` (streams with
        something to deliver, finals included) and ``watch`` (every unfinished stream)."""
        pipe = self.redis.pipeline(transaction=False)
        for key in self.schedules.all_due() + self.schedules.all_watch():
            pipe.zcard(key)
        sizes = [int(n) for n in pipe.execute()]
        shards = self.schedules.shards
        return {"due": sum(sizes[:shards]), "watch": sum(sizes[shards:])}

    def live_streams(self, limit: int = 100, page: int = 200) -> tuple[int, list[dict[str, Any]]]:
        """The server time (ms) and up to ``limit`` unfinished (open or closing) streams of the
        deployment, read from the watch schedules ``page`` ids at a time (see ``describe``)."""
        now = self.server_now_ms()
        found: list[dict[str, Any]] = []
        for key in self.schedules.all_watch():
            start = 0
            while len(found) < limit:
                ids = [_text(i) for i in self.redis.zrange(key, start, start + page - 1)]
                if not ids:
                    break
                start += len(ids)
                found += [
                    v for v in self._views(ids) if v["meta"].get("status") in ("open", "closing")
                ]
        return now, found[:limit]

    def describe(self, stream_id: str) -> dict[str, Any]:
        """Everything Redis holds about one stream, for reading: ``meta``, ``sent`` (the sent
        state hash without its document), ``state`` (the SentState), ``lease`` (holder token or
        None) and ``lease_ms``, ``text_b``/``chars`` (text length in bytes and characters),
        ``marks``, ``orphans``, ``due_ms``/``watch_ms`` (schedule entries or None), ``ttl_s``,
        ``result`` and ``now_ms``. StreamNotFound when Redis has neither state nor result."""
        view = self._views([validate_stream_id(stream_id)])[0]
        if not view["meta"] and view["result"] is None:
            raise StreamNotFound(stream_id)
        return {**view, "now_ms": self.server_now_ms()}

    def _views(self, stream_ids: list[str]) -> list[dict[str, Any]]:
        """Read-only views of several streams in two round trips (see ``describe``)."""
        pipe = self.redis.pipeline(transaction=False)
        for sid in stream_ids:
            k = Keys.of(sid)
            pipe.hgetall(k.meta)
            pipe.hgetall(k.sent)
            pipe.get(k.lease)
            pipe.pttl(k.lease)
            pipe.strlen(k.text)
            pipe.llen(k.marks)
            pipe.llen(k.orphans)
            pipe.get(k.result)
            pipe.ttl(k.meta)
            pipe.zscore(self.schedules.due(sid), sid)
            pipe.zscore(self.schedules.watch(sid), sid)
        raw = pipe.execute()
        views: list[dict[str, Any]] = []
        for i, sid in enumerate(stream_ids):
            meta, sent, lease, lease_ms, text_b, marks, orphans, result, ttl, due, watch = (
                raw[11 * i : 11 * i + 11]
            )
            sent_h = {_text(k): _text(v) for k, v in sent.items()}
            doc = sent_h.pop("doc", None)
            views.append({
                "id": sid,
                "meta": {_text(k): _text(v) for k, v in meta.items()},
                "sent": sent_h,
                "state": SentState.from_json(int(sent_h.get("version", 0)), doc),
                "lease": None if lease is None else _text(lease),
                "lease_ms": max(0, int(lease_ms)),
                "text_b": int(text_b),
                "marks": int(marks),
                "orphans": int(orphans),
                "result": None if result is None else json.loads(result),
                "ttl_s": int(ttl),
                "due_ms": None if due is None else int(due),
                "watch_ms": None if watch is None else int(watch),
            })
        pipe = self.redis.pipeline(transaction=False)
        for view in views:
            pipe.getrange(Keys.of(view["id"]).text, int(view["sent"].get("read_b", 0)), -1)
        for view, tail in zip(views, pipe.execute(), strict=True):
            read_c = int(view["sent"].get("read_c", 0))
            view["chars"] = read_c + len(bytes(tail).decode("utf-8", "replace"))
        return views
