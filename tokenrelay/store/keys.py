"""The names of tokenrelay's Redis keys (the store room owns them all: ``tokenrelay.store``).

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

Each atomic operation is a named script in ``tokenrelay/store/lua`` (``tokenrelay.store.scripts``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

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
