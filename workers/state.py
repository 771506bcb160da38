"""The only module that knows tokenrelay's Redis keys and Lua scripts.

Every per-stream key shares the hash tag ``{<stream id>}`` so each Lua script touches one
Redis Cluster slot, and every key has a TTL (short once the result is published)::

    tr:{id}:meta     hash    channel, account, chat_id, format, interval_ms, status, push_seq,
                             times (created_ms, touched_ms: last text, alive_ms: last heartbeat)
    tr:{id}:text     string  the stream's text, UTF-8, append-only (except take())
    tr:{id}:marks    list    byte offsets of tool-call boundaries
    tr:{id}:sent     hash    version, doc (SentState JSON), flushed_at_ms, ticket_ms, holder,
                             sending (a send in flight) and byte/char offsets: flushed_b,
                             delivered_b, read_b/read_c
    tr:{id}:tick     string  armed: a flush is scheduled (its due time, server ms)
    tr:{id}:lease    string  owner token of the one worker allowed to write this stream
    tr:{id}:orphans  list    "segment:message id" of messages a stale worker created
    tr:{id}:result   string  the StopResult JSON, once the stream finished

Schedules (sorted sets of stream ids by due time in server ms), per deployment (its queue
name) and one per shard so a Cluster spreads them: ``tr:due:{<queue>.<N>}`` (flushes, finals
included) and ``tr:watch:{<queue>.<N>}`` (watchdog).
Rate budgets: ``tr:rl:{<scope>}:<name>`` hashes; every budget of one call shares its scope.

Each atomic operation is a named script in ``workers/lua`` (one file each, opening with named
locals for its KEYS and ARGV; ``_prelude.lua`` is prepended to every one).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import redis

from tokenrelay.ids import validate_stream_id
from workers.delivery import Window
from workers.sent import SentState

#: directory of the Lua scripts, one file per atomic operation
LUA_DIR = Path(__file__).with_name("lua")
#: share of the configured rate an adaptive budget regains per ms after a 429 cut it (all of
#: it in 20 s)
STEP_UP = 1 / 20_000
#: ms a tick outlives its due time before a lost schedule entry counts as lost (re-armed then)
TICK_GRACE_MS = 5000


class StreamNotFound(LookupError):
    """No such stream (never started, its keys expired, or Redis lost them)."""


@dataclass(frozen=True)
class Keys:
    """The Redis keys of one stream."""

    meta: str
    text: str
    marks: str
    sent: str
    tick: str
    lease: str
    result: str
    orphans: str

    @classmethod
    def of(cls, stream_id: str) -> Keys:
        p = f"tr:{{{stream_id}}}:"
        return cls(*(p + n for n in ("meta", "text", "marks", "sent", "tick", "lease", "result",
                                     "orphans")))


def rate_key(scope: str, name: str) -> str:
    """Key of a rate budget; ``scope`` (e.g. ``telegram:default``) is the Cluster hash tag."""
    return f"tr:rl:{{{scope}}}:{name}"


def shard_of(stream_id: str, shards: int) -> int:
    return zlib.crc32(stream_id.encode()) % max(1, shards)


@dataclass(frozen=True)
class Schedules:
    """The schedule keys of one deployment: its ``namespace`` (the Celery queue name, so
    deployments sharing a Redis never run each other's streams) and its number of shards."""

    namespace: str = "tokenrelay"
    shards: int = 8

    def due(self, stream_id: str) -> str:
        """The flush schedule ``stream_id`` is on."""
        return self.due_shard(shard_of(stream_id, self.shards))

    def watch(self, stream_id: str) -> str:
        return self.watch_shard(shard_of(stream_id, self.shards))

    def due_shard(self, shard: int) -> str:
        return f"tr:due:{{{self.namespace}.{shard}}}"

    def watch_shard(self, shard: int) -> str:
        return f"tr:watch:{{{self.namespace}.{shard}}}"

    def all_due(self) -> list[str]:
        return [self.due_shard(n) for n in range(self.shards)]

    def all_watch(self) -> list[str]:
        return [self.watch_shard(n) for n in range(self.shards)]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}


@dataclass(frozen=True)
class Snapshot:
    """What a flush reads in its one opening round trip."""

    stream_id: str
    meta: dict[str, str]
    sent: SentState
    window: Window
    #: byte offset of window.base in the stream's text
    base_b: int
    #: byte length of the stream's text when read
    text_b: int
    marks_b: tuple[int, ...]
    flushed_b: int
    #: the server's clock when read (ms): every time the flush compares is on this clock
    now_ms: int = 0
    #: the previous holder never released its lease (killed, or its lease ran out mid-call)
    taken_over: bool = False
    #: "segment:message id" entries a stale worker left (messages it created, unrecorded)
    orphans: tuple[str, ...] = ()
    #: the budget ticket this stream holds (server ms), 0 for none
    ticket_ms: int = 0
    #: the segment a send was going out for when the last holder stopped (None: no send)
    sending: int | None = None

    @property
    def status(self) -> str:
        return self.meta.get("status", "")

    def byte_offset(self, char_offset: int) -> int:
        """Byte offset in the stream text of an absolute character offset inside the window."""
        return self.base_b + len(self.window.slice(self.window.base, char_offset).encode())

    def char_offset(self, byte_offset: int) -> int:
        """Character offset of a byte offset inside the window (e.g. a tool boundary)."""
        raw = self.window.text.encode()[: max(0, byte_offset - self.base_b)]
        return self.window.base + len(raw.decode("utf-8", "ignore"))


@dataclass(frozen=True)
class Begun:
    """What begin.lua answered: ``snapshot`` when the lease is ours, else why not."""

    status: str
    snapshot: Snapshot | None = None
    #: 'early': when the stream is due; 'busy': when the holder's lease runs out (server ms)
    due_ms: int = 0


@dataclass(frozen=True)
class Ended:
    """What end.lua answered: fenced, or the next due time (server ms; -1 for none)."""

    fenced: bool
    version: int = 0
    due_ms: int = -1


@dataclass(frozen=True)
class Claims:
    """Streams claimed from one schedule: (id, claim score) pairs, the server time and the
    next due time still in the schedule (-1 when empty)."""

    now_ms: int
    next_due_ms: int
    items: list[tuple[str, int]]


class Store:
    """Stream state in Redis: the producer side (create, push, schedule, close, take, results)
    and the worker side (begin, commit, end, finish, leases, schedules, budgets). Safe to share
    between threads; every caller draws on one bounded connection pool."""

    def __init__(self, client: redis.Redis, schedules: Schedules | None = None) -> None:
        self.redis = client
        self.schedules = schedules or Schedules()

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

    @cached_property
    def scripts(self) -> dict[str, Any]:
        prelude = (LUA_DIR / "_prelude.lua").read_text()
        return {
            path.stem: self.redis.register_script(prelude + path.read_text())
            for path in sorted(LUA_DIR.glob("*.lua"))
            if not path.stem.startswith("_")
        }

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return self.scripts[name](keys=keys, args=args)

    def _pipelined(self, calls: list[tuple[str, list[str], list[Any]]]) -> list[Any]:
        """Run several scripts in one round trip (EVALSHA straight in a pipeline: redis-py's
        Script objects would send a SCRIPT EXISTS before every pipeline)."""
        for attempt in (1, 2):
            pipe = self.redis.pipeline(transaction=False)
            for name, keys, args in calls:
                pipe.evalsha(self.scripts[name].sha, len(keys), *keys, *args)
            try:
                return pipe.execute()
            except redis.exceptions.NoScriptError:
                if attempt == 2:
                    raise
                for name in {c[0] for c in calls}:  # Redis restarted or flushed its scripts
                    self.redis.script_load(self.scripts[name].script)
        raise AssertionError("unreachable")

    def server_now_ms(self) -> int:
        sec, usec = self.redis.time()
        return int(sec) * 1000 + int(usec) // 1000

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

    # read-only views for monitoring (workers.metrics, `tokenrelay status` and `inspect`) -------
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


@dataclass(frozen=True)
class Offsets:
    """Where the stream's text stands for the planner, in bytes (Redis) and characters."""

    flushed_b: int
    delivered_b: int
    read_b: int
    read_c: int

    def args(self) -> list[int]:
        return [self.flushed_b, self.delivered_b, self.read_b, self.read_c]
