"""Flush and stop a stream: load it, ask the planner, call the channel, record the sent state.

This is the I/O shell around the pure planner (``workers.delivery``); the Celery tasks are thin
shells around :class:`Flusher`. Every error type a channel raises is handled here, once.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from typing import Any, Literal

from tokenrelay.config import ConfigError, Settings
from tokenrelay.results import How, StopResult
from workers import delivery
from workers.channels import ClientCache
from workers.channels import base as errors
from workers.channels.base import Call, ChannelClient, Format
from workers.lease import Lease, LeaseKeeper, LeaseLost
from workers.ratelimit import RateLimiter
from workers.sent import SentState
from workers.state import Snapshot, Store, now_ms

log = logging.getLogger(__name__)

#: smallest per-message limit a stream falls back to after the platform says "too long"
MIN_UNITS = 256
#: longest pause between two attempts of a final delivery after server errors, seconds
MAX_FINAL_BACKOFF = 30.0


@dataclass(frozen=True)
class Outcome:
    """What the task shell must do next."""

    action: Literal["idle", "flush_again", "busy", "retry", "done"]
    delay: float = 0.0
    result: dict[str, Any] | None = None
    #: Celery task id of the next flush in the stream's chain
    next_id: str | None = None


class Flusher:
    """Delivers streams; one per worker process, shared by its threads."""

    def __init__(self, store: Store, settings: Settings, clients: ClientCache | None = None):
        self.store = store
        self.settings = settings
        self.leases = LeaseKeeper(store, settings.lease_ttl)
        self.clients = clients or ClientCache(settings)
        self.limiter = RateLimiter(store)

    def flush(self, stream_id: str, task_id: str) -> Outcome:
        """An interim flush: show what the producer has written so far, if the budget allows.

        ``task_id`` is this flush's Celery task id; only the flush the stream's tick names
        continues the chain (see settle.lua).
        """
        current = self.store.tick(stream_id)
        if current is not None and current != task_id:
            return Outcome("idle")  # a duplicate: the stream's tick names another flush
        next_id = uuid.uuid4().hex
        with self.leases.hold(stream_id) as lease:
            if not isinstance(lease, Lease):
                # held by the stop task, a duplicate, or a crashed worker whose lease runs out
                # by then: look again after that, if this flush still owns the chain
                if self.store.settle(stream_id, task_id, next_id, max(1, lease)):
                    return Outcome("busy", delay=lease / 1000.0, next_id=next_id)
                return Outcome("idle")
            snap = self.store.load(stream_id)
            defer = None
            if snap.status == "open":
                run = _Run(self, snap, lease, final=False)
                run.execute()
                defer = run.defer
        if not self.store.settle(stream_id, task_id, next_id, int((defer or 0) * 1000)):
            return Outcome("idle")
        interval = int(snap.meta.get("interval_ms", 1000)) / 1000.0
        delay = interval if defer is None else max(defer, 0.01)
        return Outcome("flush_again", delay=delay, next_id=next_id)

    def stop(self, stream_id: str) -> Outcome:
        """The final flush: deliver everything still unsent, then publish the StopResult."""
        done = self.store.result(stream_id)
        if done is not None:
            return Outcome("done", result=done)
        with self.leases.hold(stream_id) as lease:
            if not isinstance(lease, Lease):
                return Outcome("busy", delay=lease / 1000.0)
            if self.store.close(stream_id, "stop") is None:
                return Outcome("idle")
            snap = self.store.load(stream_id)
            run = _Run(self, snap, lease, final=True)
            run.execute()
            if run.lease_lost:
                return Outcome("busy", delay=self.settings.lease_ttl)
            closed_ms = int(snap.meta.get("closed_ms") or now_ms())
            overdue = now_ms() - closed_ms > self.settings.final_deadline * 1000
            if run.defer is not None and run.state.failure is None and not overdue:
                self.store.set_meta(stream_id, "stop_due_ms", now_ms() + int(run.defer * 1000))
                return Outcome("retry", delay=run.defer)
            gave_up = self.settings.final_deadline if run.defer is not None else None
            result = stop_result(snap, run.state, gave_up).to_dict()
            if not self.store.finish(stream_id, lease.token, result):
                result = self.store.result(stream_id) or result
        return Outcome("done", result=result)

    def watch(self, stream_id: str) -> Outcome:
        """The watchdog: finalize a stream whose producer went silent (crashed agent)."""
        meta = self.store.meta(stream_id)
        if not meta or meta.get("status") == "closed":
            return Outcome("idle")
        idle_ms = int(meta.get("idle_ms") or self.settings.idle_timeout * 1000)
        quiet_ms = now_ms() - int(meta.get("touched_ms") or 0)
        if meta.get("status") == "open" and quiet_ms < idle_ms:
            return Outcome("retry", delay=(idle_ms - quiet_ms) / 1000.0)
        log.warning("stream %s: no tokens for %d s, finalizing it", stream_id, quiet_ms // 1000)
        self.store.close(stream_id, "abandoned")
        return self.stop(stream_id)


class _Run:
    """One pass over one stream: plan, then perform the ops in order until one is held back."""

    def __init__(self, flusher: Flusher, snap: Snapshot, lease: Lease, final: bool) -> None:
        self.f = flusher
        self.snap = snap
        self.lease = lease
        self.final = final
        self.state: SentState = snap.sent
        self.chat = snap.meta["chat_id"]
        self.fmt: Format = snap.meta.get("format", "text")  # type: ignore[assignment]
        self.defer: float | None = None
        self.lease_lost = False
        self.performed = 0

    def execute(self) -> None:
        """Deliver what the plan says and commit; a lost lease ends the pass quietly."""
        try:
            self._execute()
        except LeaseLost:
            log.warning("stream %s: lease lost, another worker continues", self.snap.stream_id)
            self.lease_lost = True

    def _execute(self) -> None:
        try:
            client = self.f.clients.get(self.snap.meta["channel"], self.snap.meta["account"])
        except (errors.PermanentFailure, ConfigError) as exc:
            self.state = replace(self.state, failure=str(exc))
            self._commit(complete=True)
            return
        if self.state.failure is None:
            self._deliver(client)
        self._commit(complete=self.defer is None, stamp=self.performed > 0)

    def _deliver(self, client: ChannelClient) -> None:
        caps = client.capabilities
        max_units = int(self.snap.meta.get("max_units") or caps.max_units)
        limits = delivery.Limits(max_units, caps.units, caps.can_edit)
        horizon = None
        if not caps.can_edit and not self.final:
            marks = [self.snap.char_offset(b) for b in self.snap.marks_b if b > self.snap.base_b]
            horizon = marks[-1] if marks else self.snap.window.base
        plan = delivery.plan(self.snap.window, self.state.segments, limits, horizon)
        self.state = replace(self.state, segments=self._with_leads(client, plan.segments))
        ops = plan.ops
        if self.final and caps.can_edit:
            ops = delivery.seal(
                self.snap.window,
                self.state.segments,
                ops,
                lambda seg, text: not seg.plain
                and client.settles_differently(seg.lead + text, self.fmt),
            )
        budgets = client.budgets(self.chat)
        for op in ops:
            # the stream's first message is what the user waits for: it gets the finals' share
            first = op.kind == "send" and not any(s.message_id for s in self.state.segments)
            wait = self.f.limiter.take(budgets, self.final or first)
            if wait > 0:
                self.defer = wait
                return
            self.f.leases.check(self.lease)
            try:
                self._perform(client, op)
            except errors.RateLimited as exc:
                self.f.limiter.penalize(budgets[0], exc.retry_after)
                self.state = self.state.bump("rate_limited")
                self.defer = max(exc.retry_after, 0.05)
                return
            except errors.TransientFailure as exc:
                log.warning("stream %s: %s", self.snap.stream_id, exc)
                self.state = self.state.bump("retries")
                tries = self.state.counts["retries"]
                self.defer = min(MAX_FINAL_BACKOFF, 0.5 * 2 ** min(tries, 6))
                return
            except errors.TooLong as exc:
                if self._shrink(limits, op.index):
                    self.defer = 0.05
                    return
                log.error("stream %s: skipped a message the platform calls too long: %s",
                          self.snap.stream_id, exc)
                self.state = replace(self.state, segments=delivery.apply(self.state.segments, op))
            except errors.Rejected as exc:
                log.warning("stream %s: skipped a refused message: %s", self.snap.stream_id, exc)
                self.state = replace(self.state, segments=delivery.apply(self.state.segments, op))
            except errors.PermanentFailure as exc:
                self.state = replace(self.state, failure=str(exc))
                return
            self.performed += 1
            if op is not ops[-1]:
                # record each message as soon as it exists: a crash now must not send it twice
                self._commit(complete=False, stamp=True)

    def _with_leads(
        self, client: ChannelClient, segs: tuple[delivery.Segment, ...]
    ) -> tuple[delivery.Segment, ...]:
        """Give each new segment the markup its cut left open (decided once, at the split)."""
        out = list(segs)
        window = self.snap.window
        for i in range(1, len(out)):
            prev, seg = out[i - 1], out[i]
            fresh = seg.message_id is None and not seg.lead and prev.cut is not None
            if fresh and prev.start >= window.base:
                text = prev.lead + window.slice(prev.start, prev.cut)
                out[i] = replace(seg, lead=client.continuation(text, self.fmt))
        return tuple(out)

    def _perform(self, client: ChannelClient, op: delivery.Op) -> None:
        seg = self.state.segments[op.index]
        text = self.snap.window.slice(op.start, op.end).strip()
        fmt: Format = "text" if seg.plain else self.fmt
        done = self.final or seg.cut is not None  # this message's text will not grow again
        try:
            lead = "" if seg.plain else seg.lead
            message_id = self._call(client, op, lead + text, fmt, done)
        except errors.ParseError:
            self.state = self.state.bump("plain_fallbacks")
            segs = list(self.state.segments)
            segs[op.index] = replace(seg, plain=True)
            self.state = replace(self.state, segments=tuple(segs))
            message_id = self._call(client, op, text, "text", done)
        if op.kind == "send" or message_id != op.message_id:
            op = replace(op, kind="send")
        segs = delivery.apply(self.state.segments, op, message_id, sealed=done)
        self.state = replace(self.state, segments=segs)
        if self.final:
            self.state = replace(
                self.state,
                stop_ops=self.state.stop_ops + 1,
                whole_at_stop=self.state.whole_at_stop + (op.kind == "send"),
            )

    def _call(
        self, client: ChannelClient, op: delivery.Op, text: str, fmt: Format, final: bool
    ) -> str | None:
        """Send or edit; an edit of a deleted message becomes a send. Returns the message id."""
        meta = self.snap.meta
        native, thread = meta.get("native") == "1", meta.get("thread") or None
        if op.kind == "edit" and op.message_id is not None:
            try:
                seg = self.state.segments[op.index]
                previous = self.snap.window.slice(seg.start, seg.shown).strip() if (
                    seg.start >= self.snap.window.base
                ) else ""
                call = Call(op_key(self.snap.stream_id, op.index), previous, native, thread)
                moved = client.edit(self.chat, op.message_id, text, fmt, final, call)
                self.state = self.state.bump("edits")
                return moved or op.message_id
            except errors.NotModified:
                self.state = self.state.bump("not_modified")
                return op.message_id
            except errors.MessageGone:
                self.state = self.state.bump("resent")
        call = Call(op_key(self.snap.stream_id, op.index), "", native, thread)
        message_id = client.send(self.chat, text, fmt, final, call)
        self.state = self.state.bump("sends")
        if self.state.first_visible_ms is None:
            created = int(self.snap.meta.get("created_ms", now_ms()))
            self.state = replace(self.state, first_visible_ms=max(0, now_ms() - created))
        return message_id

    def _shrink(self, limits: delivery.Limits, index: int) -> bool:
        """The platform counts longer than we do: use a smaller limit from now on and cut the
        refused segment again. False when that cannot help (already at MIN_UNITS, or later
        messages exist)."""
        if limits.max_units <= MIN_UNITS:
            return False
        smaller = replace(limits, max_units=max(MIN_UNITS, int(limits.max_units * 0.9)))
        segs = self.state.segments
        if segs[index].cut is not None:
            recut = delivery.resplit(self.snap.window, segs, index, smaller)
            if recut is None:
                return False
            self.state = replace(self.state, segments=recut)
        self.f.store.set_meta(self.snap.stream_id, "max_units", smaller.max_units)
        return True

    def _commit(self, complete: bool, stamp: bool = False) -> None:
        segs = self.state.segments
        end = self.snap.window.end
        read_c = max(self.snap.window.base, delivery.read_from(segs)) if segs else 0
        delivered_c = max(read_c, delivery.delivered_until(segs, end))
        version = self.f.store.commit(
            self.snap.stream_id,
            self.lease.token,
            self.state,
            flushed_b=self.snap.text_b if complete else self.snap.flushed_b,
            delivered_b=self.snap.byte_offset(min(delivered_c, end)),
            read_b=self.snap.byte_offset(read_c),
            read_c=read_c,
            stamp=stamp,
        )
        if version < 0:
            raise LeaseLost(self.snap.stream_id)
        self.state = replace(self.state, version=version)


def op_key(stream_id: str, index: int) -> str:
    """The idempotency key of segment ``index``'s send: stable across retries and workers,
    25 characters of [0-9a-f] (Discord's nonce limit)."""
    import hashlib

    return hashlib.sha256(f"{stream_id}:{index}".encode()).hexdigest()[:25]


def stop_result(snap: Snapshot, state: SentState, gave_up: float | None = None) -> StopResult:
    """What the chat shows, from the sent state the stop task recorded."""
    end = snap.window.end
    missing = delivery.unsent(state.segments, end)
    ids = [s.message_id for s in state.segments if s.message_id is not None]
    how: How
    if state.failure is not None:
        how = "failed"
    elif missing:
        how = "incomplete"
    elif not ids:
        how = "empty"
    elif state.whole_at_stop:
        how = "sent_at_stop"
    elif state.stop_ops:
        how = "edited_at_stop"
    else:
        how = "streamed"
    error = state.failure
    if gave_up is not None and error is None:
        error = f"final delivery still held back after {gave_up:g} s (rate limits or server errors)"
    return StopResult(
        stream_id=snap.stream_id,
        all_sent=state.failure is None and missing == 0,
        message_ids=ids,
        how=how,
        channel=snap.meta.get("channel", ""),
        chat_id=snap.meta.get("chat_id", ""),
        text_chars=end,
        unsent_chars=missing,
        first_visible_ms=state.first_visible_ms,
        error=error,
        **{k: state.counts.get(k, 0) for k in (
            "sends", "edits", "retries", "rate_limited", "not_modified", "plain_fallbacks",
            "resent",
        )},
    )

