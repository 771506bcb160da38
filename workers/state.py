"""The only module that knows tokenrelay's Redis keys and Lua scripts.

Every per-stream key shares the hash tag ``{<stream id>}`` so each Lua script touches one
Redis Cluster slot, and every key has a TTL so abandoned streams clean themselves up::

    tr:{id}:meta    hash    channel, account, chat_id, format, interval_ms, status, times
    tr:{id}:text    string  the stream's text, UTF-8, append-only (except take())
    tr:{id}:marks   list    byte offsets of tool-call boundaries
    tr:{id}:sent    hash    version, doc (SentState JSON), flushed_at_ms and byte/char offsets:
                            flushed_b (text flushed), delivered_b (text shown), read_b/read_c
    tr:{id}:tick    string  armed: a flush is scheduled (short TTL, so a crash re-arms in seconds)
    tr:{id}:lease   string  owner token of the one worker allowed to write this stream
    tr:{id}:result  string  the StopResult JSON, once the stop task finished
    tr:{id}:done    list    one element per finish, for waiters to BLPOP

Each atomic operation is a named script in ``workers/lua`` (create, push, settle, lease_*,
commit, close, finish, take, load, rate_*), loaded once and called by name.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import redis

from workers.delivery import Window
from workers.sent import SentState

#: directory of the Lua scripts, one file per atomic operation
LUA_DIR = Path(__file__).with_name("lua")
#: what a stream id may look like (it appears in Redis keys and task arguments)
STREAM_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
#: ms a tick outlives the flush interval before a crashed flush counts as lost
TICK_GRACE_MS = 1500
#: ms a published result is kept for late waiters
RESULT_TTL_S = 3600

#: push() answers
ARMED_NOTHING, CLOSED, UNKNOWN, TOO_LONG = -1, -2, -3, -4


class StreamNotFound(LookupError):
    """No such stream (never started, or its keys expired)."""


def validate_stream_id(stream_id: str) -> str:
    if not isinstance(stream_id, str) or not STREAM_ID.match(stream_id):
        raise ValueError(f"invalid stream id {stream_id!r}: use 1-100 of [A-Za-z0-9_.:-]")
    return stream_id


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
    done: str

    @classmethod
    def of(cls, stream_id: str) -> Keys:
        p = f"tr:{{{stream_id}}}:"
        return cls(*(p + n for n in ("meta", "text", "marks", "sent", "tick", "lease", "result",
                                     "done")))


def rate_key(scope: str, name: str) -> str:
    """Key of a rate budget; ``scope`` (e.g. ``telegram:default``) is the Cluster hash tag."""
    return f"tr:rl:{{{scope}}}:{name}"


@dataclass(frozen=True)
class Snapshot:
    """What a flush reads in one round trip."""

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


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in zip(flat[::2], flat[1::2], strict=True)
    }


def now_ms() -> int:
    return int(time.time() * 1000)


class Store:
    """Stream state in Redis: the producer side (create, push, close, take, wait) and the worker
    side (lease, load, commit, settle, finish). Safe to share between threads."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    @classmethod
    def from_url(cls, url: str) -> Store:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=3, socket_timeout=10, health_check_interval=30
        )
        return cls(client)

    @cached_property
    def scripts(self) -> dict[str, Any]:
        return {
            path.stem: self.redis.register_script(path.read_text())
            for path in sorted(LUA_DIR.glob("*.lua"))
        }

    def _run(self, name: str, keys: list[str], args: list[Any], client: Any = None) -> Any:
        return self.scripts[name](keys=keys, args=args, client=client or self.redis)

    # producer side ---------------------------------------------------------------------------
    def create(self, stream_id: str, meta: dict[str, str | int], ttl_s: int) -> None:
        """Register a new stream (every key with its TTL); refuses an id that is already in use."""
        k = Keys.of(stream_id)
        pairs: list[str | int] = []
        for name, value in meta.items():
            pairs += [name, value]
        if not self._run("create", [k.meta, k.text, k.sent], [ttl_s, *pairs]):
            raise ValueError(f"stream {stream_id!r} already exists")

    def push_many(
        self, batch: list[tuple[str, bytes, bool, str]], max_bytes: int
    ) -> list[int]:
        """Append chunks (stream id, UTF-8 bytes, ends at a tool boundary, flush task id) in one
        pipeline.

        Returns push.lua's answer per chunk: a countdown in ms for a flush to enqueue with that
        task id, or one of ARMED_NOTHING, CLOSED, UNKNOWN, TOO_LONG.
        """
        script = self.scripts["push"]
        for attempt in (1, 2):
            # EVALSHA straight in the pipeline: redis-py's Script objects would send a
            # SCRIPT EXISTS before every pipeline, one more round trip on the hot path
            pipe = self.redis.pipeline(transaction=False)
            for stream_id, chunk, mark, task_id in batch:
                k = Keys.of(stream_id)
                pipe.evalsha(
                    script.sha, 5, k.meta, k.text, k.sent, k.tick, k.marks,
                    chunk, int(mark), TICK_GRACE_MS, max_bytes, task_id,
                )
            try:
                return [int(r) for r in pipe.execute()]
            except redis.exceptions.NoScriptError:
                if attempt == 2:
                    raise
                self.redis.script_load(script.script)  # Redis restarted or flushed its scripts
        raise AssertionError("unreachable")

    def close(self, stream_id: str, reason: str = "stop") -> str | None:
        """Mark the stream closing (no more tokens). Returns the status it had, None if unknown."""
        status = self._run("close", [Keys.of(stream_id).meta], [reason])
        return status.decode() if isinstance(status, bytes) else status

    def take(self, stream_id: str) -> tuple[bool, str | int]:
        """Cut off the undelivered tail: (True, tail) or (False, ms the lease still lives)."""
        k = Keys.of(stream_id)
        ok, value = self._run("take", [k.lease, k.text, k.sent, k.marks], [])
        if ok:
            return True, value.decode() if isinstance(value, bytes) else str(value)
        return False, int(value)

    def result(self, stream_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(Keys.of(stream_id).result)
        return None if raw is None else json.loads(raw)

    def wait_done(self, stream_id: str, timeout: float) -> bool:
        """Block up to ``timeout`` s for the stream's finish signal (or an existing result)."""
        k = Keys.of(stream_id)
        if self.redis.exists(k.result):
            return True
        got = self.redis.blpop([k.done], timeout=max(timeout, 0.01))
        if got is not None:
            pipe = self.redis.pipeline(transaction=True)
            pipe.rpush(k.done, b"1")  # leave the signal for other waiters
            pipe.expire(k.done, RESULT_TTL_S)
            pipe.execute()
            return True
        return bool(self.redis.exists(k.result))

    def tick(self, stream_id: str) -> str | None:
        """The task id of the stream's scheduled flush, if one is armed."""
        raw = self.redis.get(Keys.of(stream_id).tick)
        return None if raw is None else raw.decode()

    def set_meta(self, stream_id: str, name: str, value: str | int) -> None:
        self.redis.hset(Keys.of(stream_id).meta, name, value)

    def stop_attended(self, stream_id: str) -> bool:
        """True while a worker holds the stream or its stop task is scheduled to retry."""
        k = Keys.of(stream_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(k.lease)
        pipe.hget(k.meta, "stop_due_ms")
        pipe.time()
        held, due, (sec, usec) = pipe.execute()
        return bool(held) or int(due or 0) + 1000 > sec * 1000 + usec // 1000

    def meta(self, stream_id: str) -> dict[str, str]:
        raw = self.redis.hgetall(Keys.of(stream_id).meta)
        return {k.decode(): v.decode() for k, v in raw.items()}

    # worker side -----------------------------------------------------------------------------
    def acquire(self, stream_id: str, token: str, ttl_ms: int) -> int:
        """1 when the lease is ours now, else the ms the holder's lease still lives."""
        return int(self._run("lease_acquire", [Keys.of(stream_id).lease], [token, ttl_ms]))

    def renew(self, stream_id: str, token: str, ttl_ms: int) -> bool:
        return bool(self._run("lease_renew", [Keys.of(stream_id).lease], [token, ttl_ms]))

    def release(self, stream_id: str, token: str) -> bool:
        return bool(self._run("lease_release", [Keys.of(stream_id).lease], [token]))

    def load(self, stream_id: str) -> Snapshot:
        k = Keys.of(stream_id)
        meta_raw, sent_raw, text, marks, text_b = self._run(
            "load", [k.meta, k.sent, k.text, k.marks], []
        )
        meta = _pairs(meta_raw)
        if not meta:
            raise StreamNotFound(stream_id)
        sent_h = _pairs(sent_raw)
        sent = SentState.from_json(int(sent_h.get("version", 0)), sent_h.get("doc"))
        read_b = int(sent_h.get("read_b", 0))
        base = int(sent_h.get("read_c", 0))
        return Snapshot(
            stream_id=stream_id,
            meta=meta,
            sent=sent,
            window=Window(bytes(text).decode("utf-8"), base),
            base_b=read_b,
            text_b=int(text_b),
            marks_b=tuple(int(m) for m in marks),
            flushed_b=int(sent_h.get("flushed_b", 0)),
        )

    def commit(
        self,
        stream_id: str,
        token: str,
        sent: SentState,
        *,
        flushed_b: int,
        delivered_b: int,
        read_b: int,
        read_c: int,
        stamp: bool,
    ) -> int:
        """Write the sent state if we own the lease and nobody wrote since ``sent.version``.

        Returns the new version, or -1 when fenced off (the caller must stop writing).
        """
        k = Keys.of(stream_id)
        return int(
            self._run(
                "commit",
                [k.lease, k.sent],
                [token, sent.version, sent.to_json(), flushed_b, delivered_b, read_b, read_c,
                 int(stamp)],
            )
        )

    def settle(self, stream_id: str, task_id: str, next_id: str, defer_ms: int = 0) -> bool:
        """After flush ``task_id``: True when the caller must enqueue flush ``next_id`` (new text,
        or held back ``defer_ms``); False when the chain ends or belongs to another flush."""
        k = Keys.of(stream_id)
        return bool(
            self._run(
                "settle",
                [k.meta, k.text, k.sent, k.tick],
                [TICK_GRACE_MS, defer_ms, task_id, next_id],
            )
        )

    def finish(self, stream_id: str, token: str, result: dict[str, Any]) -> bool:
        k = Keys.of(stream_id)
        return bool(
            self._run(
                "finish",
                [k.lease, k.meta, k.result, k.done, k.tick],
                [token, json.dumps(result), RESULT_TTL_S],
            )
        )

    def rate_take(self, budgets: list[tuple[str, int, int]]) -> int:
        """Take one slot from every (key, emission ms, tolerance ms) budget; 0 or ms to wait."""
        args: list[int] = []
        for _, emission, tolerance in budgets:
            args += [emission, tolerance]
        return int(self._run("rate_take", [b[0] for b in budgets], args))

    def rate_penalize(self, key: str, retry_after_ms: int, tolerance_ms: int) -> None:
        self._run("rate_penalize", [key], [retry_after_ms, tolerance_ms])
