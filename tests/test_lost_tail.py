"""No lost tail (DESIGN invariant 1), interleaving by interleaving: the Store's steps are called
by hand on the session's Redis with a push placed between begin, commit, end and the settling of
the schedule entry, so each window of a real pass is hit every run, not by chance.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tokenrelay.store import Keys, Offsets, Schedules, Snapshot, Store
from workers.lease import owner_token

pytestmark = pytest.mark.integration

LEASE_MS = 5000
MAX_BYTES = 1 << 20


@pytest.fixture
def store(redis_url: str) -> Iterator[Store]:
    """A Store on the session's Redis with schedules no worker of the session claims."""
    s = Store.from_url(redis_url, schedules=Schedules(f"lost-tail-{uuid.uuid4().hex[:8]}", 1))
    yield s
    s.redis.close()


class Producer:
    """Numbered pushes of one stream, the way producers.pusher sends them."""

    def __init__(self, store: Store, interval_ms: int = 100) -> None:
        self.store = store
        self.id = f"lt-{uuid.uuid4().hex[:12]}"
        self.seq = 0
        store.create(self.id, {"interval_ms": interval_ms, "channel": "telegram",
                               "account": "default", "chat_id": "1"}, 600)

    def push(self, text: str) -> tuple[str, int]:
        """Append ``text`` and schedule the flush when it arms: (answer, due ms)."""
        self.seq += 1
        [(answer, due)] = self.store.push_many([(self.id, text.encode(), False, self.seq)],
                                               MAX_BYTES)
        if answer == "armed":
            self.store.schedule([(self.id, due)], sooner_only=False)  # as the pusher does
        return answer, due


def complete(snap: Snapshot) -> Offsets:
    """Offsets of a pass that delivered everything its snapshot read."""
    return Offsets(snap.text_b, snap.text_b, snap.base_b, snap.window.base)


def begin(store: Store, sid: str) -> tuple[str, Snapshot]:
    token = owner_token()
    begun = store.begin(sid, token, LEASE_MS)
    assert begun.status == "ok" and begun.snapshot is not None, begun
    return token, begun.snapshot


def end(store: Store, sid: str, token: str, snap: Snapshot, version: int | None = None):
    """end.lua as a pass that delivered its whole snapshot calls it (flusher._end)."""
    sent = snap.sent if version is None else type(snap.sent)(version=version)
    return store.end(sid, token, sent, complete(snap), stamp=True, defer_ms=-1, ticket_ms=0,
                     orphans_done=0)


def test_a_push_between_begin_and_end_re_arms_the_stream(store: Store) -> None:
    p = Producer(store)
    assert p.push("Hello")[0] == "armed"
    token, snap = begin(store, p.id)
    assert snap.window.text == "Hello"
    # the pass is at the platform; the agent writes on: the tick is still armed, so the push
    # only appends and leaves the scheduling to the pass
    assert p.push(", world") == ("quiet", -1)
    ended = end(store, p.id, token, snap)
    assert not ended.fenced
    assert ended.due_ms >= 0, "end saw text its pass never read: it must arm the next flush"
    assert store.redis.exists(Keys.of(p.id).tick), "and leave the tick armed for pushes"
    k = Keys.of(p.id)
    flushed_b = int(store.redis.hget(k.sent, "flushed_b"))
    assert store.redis.getrange(k.text, flushed_b, -1) == b", world", "the tail still counts"


def test_a_push_between_a_mid_pass_commit_and_end_re_arms_the_stream(store: Store) -> None:
    p = Producer(store)
    p.push("first message")
    token, snap = begin(store, p.id)
    # a pass with several ops commits after each; the producer pushes right after one
    mid = Offsets(snap.flushed_b, snap.text_b, snap.base_b, snap.window.base)
    version = store.commit(p.id, token, snap.sent, mid, stamp=True)
    assert version == snap.sent.version + 1
    assert p.push(" and more") == ("quiet", -1)
    ended = end(store, p.id, token, snap, version=version)
    assert not ended.fenced and ended.due_ms >= 0, ended


def test_a_push_right_after_end_disarmed_arms_the_stream_itself(store: Store) -> None:
    p = Producer(store, interval_ms=100)
    p.push("Hello")
    token, snap = begin(store, p.id)
    ended = end(store, p.id, token, snap)
    assert (ended.fenced, ended.due_ms) == (False, -1), "nothing new: the pass disarms"
    assert not store.redis.exists(Keys.of(p.id).tick)
    now = store.server_now_ms()
    answer, due = p.push(" again")
    assert answer == "armed", "the tick is free: the push that finds it so must arm it"
    flushed_at = int(store.redis.hget(Keys.of(p.id).sent, "flushed_at_ms"))
    assert due >= max(now, flushed_at + 100), "due one interval after the last flush"
    score = store.redis.zscore(store.schedules.due(p.id), p.id)
    assert score is not None and score <= due, "and on the schedule by then"


def test_a_push_during_the_final_pass_is_refused_not_lost_silently(store: Store) -> None:
    p = Producer(store)
    p.push("the whole reply")
    assert store.close(p.id) == "open"
    token, snap = begin(store, p.id)
    assert snap.status == "closing", "a closing stream gets its final pass"
    text_before = store.redis.get(Keys.of(p.id).text)
    assert p.push(" (late)") == ("closed", -1), "a push after close must say so"
    assert store.redis.get(Keys.of(p.id).text) == text_before, "and append nothing"
    assert store.finish(p.id, token, snap.sent, {"stream_id": p.id}, 60)
    assert p.push(" (later)") == ("closed", -1)


def test_release_keeps_an_entry_a_push_moved_since_the_claim(store: Store) -> None:
    p = Producer(store, interval_ms=100)
    key = store.schedules.due(p.id)
    p.push("Hello")
    now = store.server_now_ms()
    claims = store.claim(key, 10, 2500, 0)
    [(sid, claim)] = claims.items
    assert sid == p.id and claim >= now + 2500
    token, snap = begin(store, p.id)
    assert end(store, p.id, token, snap).due_ms == -1
    answer, due = p.push(" again")  # lands before the engine settles the claim
    assert answer == "armed" and due < claim
    store.release_claims(key, [(p.id, claim, -1)])  # the pass asked to remove it
    assert store.redis.zscore(key, p.id) == due, "the push's schedule stands"

    # without a push in between, the settle does what the pass asked
    claims = store.claim(key, 10, 2500, 0) if due <= store.server_now_ms() else None
    if claims is None:
        store.schedule([(p.id, 0)])
        claims = store.claim(key, 10, 2500, 0)
    [(_, claim)] = claims.items
    store.release_claims(key, [(p.id, claim, -1)])
    assert store.redis.zscore(key, p.id) is None


def test_release_keeps_an_entry_a_push_scheduled_later_than_the_claim(store: Store) -> None:
    p = Producer(store, interval_ms=10_000)
    key = store.schedules.due(p.id)
    p.push("Hello")
    [(_, claim)] = store.claim(key, 10, 2500, 0).items
    token, snap = begin(store, p.id)
    assert end(store, p.id, token, snap).due_ms == -1
    answer, due = p.push(" again")
    assert answer == "armed" and due > claim, "the next flush is due after the claim ends"
    assert store.redis.exists(Keys.of(p.id).tick)
    store.release_claims(key, [(p.id, claim, -1)])
    assert store.redis.zscore(key, p.id) is not None, (
        "an armed stream is on no schedule: its text waits for the tick to expire"
    )
