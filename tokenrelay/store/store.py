"""The Store: every read and write of a stream's state in Redis, producer side and worker side.

Key names live in ``tokenrelay.store.keys``, the Lua scripts in ``tokenrelay.store.scripts``;
nothing outside this room names a key or runs a script.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from tokenrelay.store.keys import TICK_GRACE_MS, Keys, Schedules
from tokenrelay.store.scripts import ScriptCall, Scripts
from tokenrelay.store.sent import SentState
from tokenrelay.store.snapshot import Begun, Claims, Ended, Offsets, Snapshot, Window
from tokenrelay.store.views import StreamViews, _text

#: share of the configured rate an adaptive budget regains per ms after a 429 cut it (all of
#: it in 20 s)
STEP_UP = 1 / 20_000


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}


class Store(StreamViews):
    """Stream state in Redis: the producer side (create, push, schedule, close, take, results)
    and the worker side (begin, commit, end, finish, leases, schedules, budgets). Safe to share
    between threads; every caller draws on one bounded connection pool."""

    def __init__(self, client: redis.Redis, schedules: Schedules | None = None) -> None:
        self.redis = client
        self.schedules = schedules or Schedules()
        self._scripts = Scripts(client)

    @classmethod
    def from_url(
        cls,
        url: str,
        max_connections: int = 16,
        wait: float = 20.0,
        schedules: Schedules | None = None,
    ) -> Store:
        """A Store with a blocking pool of ``max_connections``: a caller waits up to ``wait`` s
        for a free connection instead of failing (thousands of threads share a few)."""
        pool = redis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=wait, socket_connect_timeout=3,
            socket_timeout=10, health_check_interval=30,
        )
        return cls(redis.Redis(connection_pool=pool), schedules)

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return self._scripts.run(name, keys, args)

    def _pipelined(self, calls: list[ScriptCall]) -> list[Any]:
        return self._scripts.pipelined(calls)

    # producer side ---------------------------------------------------------------------------
    def create(self, stream_id: str, meta: dict[str, str | int], ttl_s: int) -> int:
        """Register a new stream (every key with its TTL); returns its creation time (server
        ms). ValueError for an id that is already in use."""
        k = Keys.of(stream_id)
        pairs: list[str | int] = []
        for name, value in meta.items():
            pairs += [name, value]
        created = int(self._run("create", [k.meta, k.text, k.sent], [ttl_s, *pairs]))
        if not created:
            raise ValueError(f"stream {stream_id!r} already exists")
        return created

    def push_many(
        self, batch: list[tuple[str, bytes, bool, int]], max_bytes: int
    ) -> list[tuple[str, int]]:
        """Append numbered chunks (stream id, UTF-8 bytes, ends at a tool boundary, sequence
        number) in one pipeline. Returns per chunk (answer, due ms): answer is ``armed`` (the
        caller schedules the flush at due ms), ``quiet``, ``closed``, ``unknown`` or
        ``too_long``."""
        calls = []
        for stream_id, chunk, mark, seq in batch:
            k = Keys.of(stream_id)
            calls.append((
                "push", [k.meta, k.text, k.sent, k.tick, k.marks],
                [chunk, int(mark), seq, max_bytes, TICK_GRACE_MS],
            ))
        out = []
        for answer in self._pipelined(calls):
            out.append((_text(answer[0]), int(answer[1]) if len(answer) > 1 else -1))
        return out

    def schedule(
        self, entries: list[tuple[str, int]], watch: bool = False, sooner_only: bool = True
    ) -> None:
        """Put streams on their schedule at the given due times (server ms; 0: now).

        ``sooner_only`` never moves an entry later than it is (it may be due sooner already);
        a push that armed the stream sets its time as given, so the score differs from any
        claim in flight and the pass that claimed it cannot remove it (release.lua).
        """
        if not entries:
            return
        pipe = self.redis.pipeline(transaction=False)
        for stream_id, due in entries:
            key = self.schedules.watch(stream_id) if watch else self.schedules.due(stream_id)
            pipe.zadd(key, {stream_id: due}, lt=sooner_only)
        pipe.execute()

    def unwatch(self, stream_id: str) -> None:
        """Take a finished stream off the watchdog's schedule (its own Cluster slot, so not
        part of finish.lua)."""
        self.redis.zrem(self.schedules.watch(stream_id), stream_id)

    def unscheduled(self, stream_ids: list[str]) -> list[str]:
        """The streams that are on no flush schedule (one round trip)."""
        pipe = self.redis.pipeline(transaction=False)
        for sid in stream_ids:
            pipe.zscore(self.schedules.due(sid), sid)
        return [sid for sid, score in zip(stream_ids, pipe.execute(), strict=True) if score is None]

    def close(self, stream_id: str, reason: str = "stop") -> str | None:
        """Mark the stream closing (no more tokens). Returns the status it had, None if unknown."""
        status = self._run("close", [Keys.of(stream_id).meta], [reason])
        return None if status is None else _text(status)

    def take(self, stream_id: str) -> tuple[bool, str | int]:
        """Cut off the undelivered tail: (True, tail) or (False, ms the lease still lives)."""
        k = Keys.of(stream_id)
        ok, value = self._run("take", [k.lease, k.text, k.sent, k.marks, k.meta], [])
        if ok:
            return True, _text(value)
        return False, int(value)

    def result(self, stream_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(Keys.of(stream_id).result)
        return None if raw is None else json.loads(raw)

    def results(self, stream_ids: list[str]) -> dict[str, dict[str, Any] | None]:
        """Each stream's result (None while it has none), and ``{"lost": True}`` for a stream
        whose state is gone without a result (Redis lost it, or it expired): one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for sid in stream_ids:
            k = Keys.of(sid)
            pipe.get(k.result)
            pipe.exists(k.meta, k.sent)
        raw = pipe.execute()
        out: dict[str, dict[str, Any] | None] = {}
        for i, sid in enumerate(stream_ids):
            # a live stream has both its meta and its sent state; one of them gone is a loss
            result, exists = raw[2 * i], raw[2 * i + 1] == 2
            out[sid] = json.loads(result) if result is not None else (
                None if exists else {"lost": True}
            )
        return out

    def meta(self, stream_id: str) -> dict[str, str]:
        raw = self.redis.hgetall(Keys.of(stream_id).meta)
        return {_text(k): _text(v) for k, v in raw.items()}

    def set_meta(self, stream_id: str, name: str, value: str | int) -> None:
        self.redis.hset(Keys.of(stream_id).meta, name, value)

    # worker side: the four steps of a flush --------------------------------------------------
    def begin(self, stream_id: str, token: str, lease_ms: int) -> Begun:
        """Check the stream wants a flush, take its lease and read it, in one round trip."""
        k = Keys.of(stream_id)
        raw = self._run(
            "begin", [k.meta, k.sent, k.text, k.marks, k.lease, k.tick, k.orphans],
            [token, lease_ms],
        )
        status = _text(raw[0])
        if status != "ok":
            return Begun(status, due_ms=int(raw[1]) if len(raw) > 1 else 0)
        now, taken_over, meta_raw, sent_raw, text, marks, text_b, orphans = raw[1:]
        sent_h = _pairs(sent_raw)
        snap = Snapshot(
            stream_id=stream_id,
            meta=_pairs(meta_raw),
            sent=SentState.from_json(int(sent_h.get("version", 0)), sent_h.get("doc")),
            window=Window(bytes(text).decode("utf-8"), int(sent_h.get("read_c", 0))),
            base_b=int(sent_h.get("read_b", 0)),
            text_b=int(text_b),
            marks_b=tuple(int(m) for m in marks),
            flushed_b=int(sent_h.get("flushed_b", 0)),
            now_ms=int(now),
            taken_over=bool(int(taken_over)),
            orphans=tuple(_text(o) for o in orphans),
            ticket_ms=int(sent_h.get("ticket_ms") or 0),
            sending=int(sent_h["sending"]) if sent_h.get("sending") else None,
        )
        return Begun("ok", snap)

    def commit(
        self, stream_id: str, token: str, sent: SentState, offsets: Offsets, stamp: bool
    ) -> int:
        """Write the sent state if we own the lease and nobody wrote since ``sent.version``.

        Returns the new version, or -1 when fenced off (the caller must stop writing).
        """
        k = Keys.of(stream_id)
        return int(self._run(
            "commit", [k.lease, k.sent],
            [token, sent.version, sent.to_json(), *offsets.args(), int(stamp)],
        ))

    def end(
        self,
        stream_id: str,
        token: str,
        sent: SentState,
        offsets: Offsets,
        *,
        stamp: bool,
        defer_ms: int,
        ticket_ms: int,
        orphans_done: int,
    ) -> Ended:
        """Commit (fenced), release the lease and settle the schedule in one round trip.

        ``defer_ms`` >= 0 asks for the next flush that much later (held back by a budget or an
        error); -1 lets the script decide (new text: after the interval; else nothing)."""
        k = Keys.of(stream_id)
        raw = self._run(
            "end", [k.lease, k.meta, k.sent, k.text, k.tick, k.orphans],
            [token, sent.version, sent.to_json(), *offsets.args(), int(stamp), defer_ms,
             ticket_ms, TICK_GRACE_MS, orphans_done],
        )
        if _text(raw[0]) == "fenced":
            return Ended(True)
        return Ended(False, int(raw[1]), int(raw[2]) if len(raw) > 2 else -1)

    def finish(
        self, stream_id: str, token: str, sent: SentState, result: dict[str, Any], ttl_s: int
    ) -> bool:
        """Publish the result, close the stream, shorten every key's TTL, notify the producer."""
        k = Keys.of(stream_id)
        return bool(self._run(
            "finish",
            [k.lease, k.meta, k.sent, k.text, k.marks, k.tick, k.orphans, k.result],
            [token, sent.version, sent.to_json(), json.dumps(result), ttl_s, stream_id],
        ))

    def renew(self, stream_id: str, token: str, ttl_ms: int) -> bool:
        """Set the lease to live ``ttl_ms`` from now, if it is still ours."""
        return bool(self._run("lease_renew", [Keys.of(stream_id).lease], [token, ttl_ms, 0]))

    def renew_many(self, leases: list[tuple[str, str]], ttl_ms: int) -> list[bool]:
        """Renew several (stream id, token) leases in one round trip, never shortening one."""
        calls = [
            ("lease_renew", [Keys.of(sid).lease], [token, ttl_ms, 1]) for sid, token in leases
        ]
        return [bool(r) for r in self._pipelined(calls)] if calls else []

    def release(self, stream_id: str, token: str) -> bool:
        k = Keys.of(stream_id)
        return bool(self._run("lease_release", [k.lease, k.sent], [token]))

    def intent(self, stream_id: str, token: str, index: int) -> bool:
        """Note that segment ``index``'s send is going out (cleared by the next commit)."""
        k = Keys.of(stream_id)
        return bool(self._run("intent", [k.lease, k.sent], [token, index]))

    def orphan(self, stream_id: str, index: int, message_id: str) -> None:
        """Hand a message we created but could not record to the stream's owner."""
        k = Keys.of(stream_id)
        self._run("orphan", [k.orphans, k.meta], [f"{index}:{message_id}"])

    # worker side: schedules ------------------------------------------------------------------
    def claim(self, key: str, limit: int, claim_ms: int, salt: int) -> Claims:
        raw = self._run("claim", [key], [limit, claim_ms, salt])
        items = [(_text(raw[i]), int(raw[i + 1])) for i in range(2, len(raw), 2)]
        return Claims(int(raw[0]), int(raw[1]), items)

    def release_claims(self, key: str, settled: list[tuple[str, int, int]]) -> None:
        """Settle claimed entries (id, claim, next due ms or -1 to remove) in one round trip."""
        if settled:
            self._pipelined([("release", [key], [sid, claim, due]) for sid, claim, due in settled])

    # worker side: budgets --------------------------------------------------------------------
    def rate_take(
        self, rows: list[tuple[str, int, int, bool]], priority: bool, ticket_ms: int,
        jitter: float,
    ) -> tuple[int, int]:
        """Take a slot from every (key, emission ms, burst, adaptive) budget: (0, 0), or
        (ms to wait, ticket: the server time to come back at)."""
        args: list[Any] = ["p" if priority else "i", ticket_ms, f"{jitter:.4f}", STEP_UP]
        for _, emission, burst, adaptive in rows:
            args += [emission, burst, int(adaptive)]
        raw = self._run("rate_take", [r[0] for r in rows], args)
        return (0, 0) if int(raw[0]) == 0 else (int(raw[0]), int(raw[1]))

    def rate_penalize(
        self, wait_key: str, adapt_key: str | None, retry_after_ms: int, tolerance_ms: int,
        cut: float,
    ) -> float:
        """Push ``wait_key``'s clock past ``retry_after_ms``; cut ``adapt_key``'s adaptive rate
        (at most once a second). Returns the adaptive factor now in force."""
        keys = [wait_key] if adapt_key is None else [wait_key, adapt_key]
        return float(
            self._run("rate_penalize", keys, [retry_after_ms, tolerance_ms, cut, STEP_UP])
        )

    def memory_policy(self) -> str | None:
        """Redis's maxmemory-policy, or None when CONFIG is not allowed."""
        try:
            return _text(self.redis.config_get("maxmemory-policy").get("maxmemory-policy"))
        except redis.exceptions.ResponseError:
            return None
