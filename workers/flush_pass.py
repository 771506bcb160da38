"""One pass over one stream, once its lease is taken: plan (pure, ``workers.planner``), then
perform the ops in order under the lease until one is held back (a budget, an error), then end
(commit, release, settle) or finish (publish the StopResult). Every error type a channel
raises is handled here, once."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Protocol

from tokenrelay.backoff import backoff
from tokenrelay.config import ConfigError, Settings
from tokenrelay.store import Offsets, SentState, Snapshot, Store
from workers import metrics
from workers.channels import ClientCache
from workers.channels import errors as errs
from workers.channels.base import Call, ChannelClient, Format
from workers.channels.http import Guard, guarded
from workers.lease import Lease, LeaseKeeper, LeaseLost
from workers.outcome import stop_result
from workers.planner import delivery
from workers.ratelimit import RateLimiter

log = logging.getLogger(__name__)

#: smallest per-message limit a stream falls back to after the platform says "too long"
MIN_UNITS = 256
#: longest pause between two attempts after server errors, seconds
MAX_BACKOFF = 30.0


@dataclass(frozen=True)
class Next:
    """What a pass leaves to the scheduler: run the stream again at ``due_ms`` (server time;
    -1: nothing to do until a push arms it), and the result once published."""

    due_ms: int = -1
    result: dict[str, Any] | None = None
    #: why the pass ended: ok, idle, early, busy, closed, gone, fenced
    status: str = "ok"


class PassTools(Protocol):
    """What a pass uses of its process's flusher (``workers.flusher.Flusher``)."""

    store: Store
    settings: Settings
    leases: LeaseKeeper
    clients: ClientCache
    limiter: RateLimiter
    pending_orphans: list[tuple[str, int, str]]

    def hand_over_pending(self) -> None: ...


class FlushPass:
    """Plan, then perform the ops in order until one is held back; then end or finish."""

    def __init__(self, flusher: PassTools, snap: Snapshot, lease: Lease) -> None:
        self.f = flusher
        self.snap = snap
        self.lease = lease
        self.final = snap.status == "closing"
        self.state: SentState = snap.sent
        self.chat = snap.meta["chat_id"]
        self.fmt: Format = snap.meta.get("format", "text")  # type: ignore[assignment]
        self.started = time.monotonic()
        #: ms to wait before the next pass (None: no reason to wait)
        self.defer_ms: int | None = None
        self.ticket_ms = snap.ticket_ms
        self.performed = 0
        #: messages this pass created and has not committed yet: handed over if fenced
        self.created: list[tuple[int, str]] = []
        self.orphans_done = 0
        self.guard: Guard | None = None
        metrics.pass_begun(snap)
        if snap.taken_over:
            self.state = replace(
                self.state.bump("takeovers"), doubt_ms=max(self.state.doubt_ms, self._doubt())
            )
            if snap.sending is not None and not self._recorded(snap.sending):
                # the last holder died with a send in flight: the chat may show a message
                # nobody recorded (a platform without idempotency keys cannot tell us)
                self.state = self.state.bump("ambiguous_sends")

    def _recorded(self, index: int) -> bool:
        segs = self.state.segments
        return 0 <= index < len(segs) and segs[index].message_id is not None

    def now_ms(self) -> int:
        """The server's clock now, from the snapshot's reading plus the time since."""
        return self.snap.now_ms + int((time.monotonic() - self.started) * 1000)

    def _doubt(self) -> int:
        """Until when an older call of ours or of a previous holder may still land."""
        return self.now_ms() + int(self.f.settings.late_write_grace * 1000)

    # the pass --------------------------------------------------------------------------------
    def execute(self) -> Next:
        try:
            try:
                client = self.f.clients.get(self.snap.meta["channel"], self.snap.meta["account"])
            except (errs.PermanentFailure, ConfigError) as exc:
                self.state = replace(self.state, failure=str(exc))
            else:
                if self.state.failure is None:
                    with guarded(
                        self.lease.deadline, lambda: self.f.leases.check(self.lease)
                    ) as self.guard:
                        self._deliver(client)
            return self._end()
        except LeaseLost as exc:
            log.warning("stream %s: lease lost (%s); another worker continues",
                        self.snap.stream_id, exc)
            self._hand_over()
            return Next(self.now_ms() + self.f.leases.ttl_ms, status="fenced")
        except Exception:
            # e.g. Redis failed after a send: the message exists, its id must not be forgotten
            self._hand_over()
            raise

    def _deliver(self, client: ChannelClient) -> None:
        caps = client.capabilities
        self._settle_orphans(client)
        max_units = int(self.snap.meta.get("max_units") or caps.max_units)
        limits = delivery.Limits(max_units, caps.units, caps.can_edit)
        horizon = None
        if not caps.can_edit and not self.final:
            marks = [self.snap.char_offset(b) for b in self.snap.marks_b if b > self.snap.base_b]
            horizon = marks[-1] if marks else self.snap.window.base
        plan = delivery.plan(self.snap.window, self.state.segments, limits, horizon)
        self.state = replace(self.state, segments=self._with_leads(client, plan.segments))
        ops = plan.ops
        reasserting = False
        if self.final and caps.can_edit:
            # a native stream's messages are provisional (drafts, open streams) until an edit
            # with final=True; other messages only when their finished rendering differs
            native = self.snap.meta.get("native") == "1"
            ops = delivery.seal(
                self.snap.window, self.state.segments, ops,
                lambda seg, text: native or (
                    not seg.plain and client.settles_differently(seg.lead + text, self.fmt)
                ),
            )
            if self.state.doubt_ms:
                if self.now_ms() < self.state.doubt_ms:
                    # an older edit may still land: deliver now, show it all again after that
                    self.defer_ms = self.state.doubt_ms - self.now_ms()
                else:
                    # cleared only once every one of these edits went out (a budget wait or an
                    # error in between leaves the doubt for the next final pass)
                    ops = delivery.reassert(self.snap.window, self.state.segments, ops)
                    reasserting = True
        if not self.final and ops and self.state.hold_ms > self.now_ms():
            self._hold(self.state.hold_ms - self.now_ms())
            return
        for op in ops:
            budgets = client.budgets(self.chat, op.kind, op.message_id)
            # the stream's first message is what the user waits for: it goes with the finals
            first = op.kind == "send" and not any(s.message_id for s in self.state.segments)
            wait_ms, ticket = self.f.limiter.take(budgets, self.final or first, self.ticket_ms)
            if wait_ms > 0:
                metrics.budget_wait(self.snap, self.final or first)
                self.state = self.state.bump("budget_waits")
                self.ticket_ms = ticket
                self._hold(wait_ms)
                return
            self.ticket_ms = 0
            self._renew_for(op, client)
            if not self._perform_guarded(client, op, limits, budgets):
                return
            self.performed += 1
            if self.guard is not None and self.guard.uncertain:
                self.guard.uncertain = False
                self._doubt_edits()
            observed = getattr(client, "observed", None)
            for budget, wait in observed(self.chat) if observed else ():
                self.f.limiter.penalize([budget], errs.RateLimited(wait))
            if op is not ops[-1]:
                # record each message as soon as it exists: a crash now must not send it twice
                self._commit()
        if reasserting:
            self.state = replace(self.state, doubt_ms=0)

    def _renew_for(self, op: delivery.Op, client: ChannelClient) -> None:
        """Renew the lease before a call. A send without an idempotency key gets the lease
        for the whole HTTP timeout: its answer must not be cut off by the lease (a lost answer
        can leave a copy in the chat), and the call still ends inside the lease. Edits keep
        the short lease (a killed worker's streams resume in seconds)."""
        long = op.kind == "send" and not client.capabilities.idempotent_send
        ttl = max(self.f.leases.ttl, self.f.settings.http_timeout + 0.5) if long else None
        deadline = self.f.leases.check(self.lease, ttl)
        if self.guard is not None:
            self.guard.deadline = deadline
        if long and not self.f.store.intent(self.snap.stream_id, self.lease.token, op.index):
            raise LeaseLost(f"{self.snap.stream_id}: lost before a send")

    def _perform_guarded(
        self, client: ChannelClient, op: delivery.Op, limits: delivery.Limits, budgets: list
    ) -> bool:
        """Make one op; map every channel error to its one handling. False: stop this pass."""
        try:
            self._perform(client, op)
        except errs.RateLimited as exc:
            self.f.limiter.penalize(budgets, exc)
            self.state = self.state.bump("rate_limited")
            self._hold(max(int(exc.retry_after * 1000), 50))
            return False
        except errs.TransientFailure as exc:
            log.warning("stream %s: %s", self.snap.stream_id, exc)
            self.state = self.state.bump("retries")
            if isinstance(exc, errs.Ambiguous) and op.kind == "send":
                self.state = self.state.bump("ambiguous_sends")
            elif op.kind == "edit":
                self._doubt_edits()
            tries = self.state.counts["retries"]
            self._hold(int(1000 * max(0.05, backoff(tries, 0.5, MAX_BACKOFF))))
            return False
        except errs.TooLong as exc:
            if self._shrink(limits, op.index):
                self._hold(50)
                return False
            self._refused(op, exc, "the platform calls it too long")
        except errs.Rejected as exc:
            self._refused(op, exc, "refused")
        except errs.PermanentFailure as exc:
            self.state = replace(self.state, failure=str(exc))
            return False
        return True

    def _doubt_edits(self) -> None:
        """An edit of ours may still land later: no newer edit until then (it would be
        overwritten and the chat would move backwards), and the final shows the text again."""
        doubt = max(self.state.doubt_ms, self._doubt())
        self.state = replace(self.state, doubt_ms=doubt, hold_ms=doubt)

    def _refused(self, op: delivery.Op, exc: errs.ChannelError, what: str) -> None:
        """A refusal that retrying will not fix: the text stays unshown and the result says so."""
        log.warning("stream %s: a message was %s: %s", self.snap.stream_id, what, exc)
        self.state = replace(self.state, last_error=str(exc))

    def _hold(self, wait_ms: int) -> None:
        self.defer_ms = max(self.defer_ms or 0, wait_ms)

    def _settle_orphans(self, client: ChannelClient) -> None:
        """Adopt or delete messages a stale worker created (so no copy stays in the chat)."""
        if not self.snap.orphans:
            return
        parsed = []
        for entry in self.snap.orphans:
            index, _, message_id = entry.partition(":")
            parsed.append((int(index), message_id))
        segs, copies = delivery.settle_orphans(self.state.segments, parsed)
        self.state = replace(self.state, segments=segs)
        for message_id in copies:
            if client.capabilities.can_delete:
                self.f.leases.check(self.lease)
                try:
                    with metrics.call(self.snap, "delete"):
                        client.delete(self.chat, message_id)
                except errs.MessageGone:
                    pass
                except errs.ChannelError as exc:
                    log.warning("stream %s: copy %s not deleted: %s",
                                self.snap.stream_id, message_id, exc)
                    continue
            self.state = self.state.bump("copies_removed")
        self.orphans_done = len(self.snap.orphans)

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
        except errs.ParseError:
            self.state = self.state.bump("plain_fallbacks")
            segs = list(self.state.segments)
            segs[op.index] = replace(seg, plain=True)
            self.state = replace(self.state, segments=tuple(segs))
            message_id = self._call(client, op, text, "text", done)
        if op.kind == "send" or message_id != op.message_id:
            op = replace(op, kind="send")
            self.created.append((op.index, message_id))
        segs = delivery.apply(self.state.segments, op, message_id, sealed=done)
        self.state = replace(self.state, segments=segs)
        metrics.shown(self.snap, self.now_ms())
        if self.final:
            self.state = replace(
                self.state,
                stop_ops=self.state.stop_ops + 1,
                whole_at_stop=self.state.whole_at_stop + (op.kind == "send"),
            )

    def _call(
        self, client: ChannelClient, op: delivery.Op, text: str, fmt: Format, final: bool
    ) -> str:
        """Send or edit; an edit of a deleted message becomes a send. Returns the message id."""
        meta = self.snap.meta
        native, thread = meta.get("native") == "1", meta.get("thread") or None
        key = op_key(self.snap.stream_id, op.index, self.state.counts["resent"])
        if op.kind == "edit" and op.message_id is not None:
            seg = self.state.segments[op.index]
            window = self.snap.window
            shown = seg.start >= window.base
            previous = window.slice(seg.start, seg.shown).strip() if shown else ""
            try:
                with metrics.call(self.snap, "edit"):
                    moved = client.edit(self.chat, op.message_id, text, fmt, final,
                                        Call(key, previous, native, thread))
                self.state = self.state.bump("edits")
                return moved or op.message_id
            except errs.NotModified:
                self.state = self.state.bump("not_modified")
                return op.message_id
            except errs.MessageGone:
                # a new message: a new idempotency key (the old one names the deleted message)
                self.state = self.state.bump("resent")
                key = op_key(self.snap.stream_id, op.index, self.state.counts["resent"])
        with metrics.call(self.snap, "send"):
            message_id = client.send(self.chat, text, fmt, final, Call(key, "", native, thread))
        self.state = self.state.bump("sends")
        if self.state.first_visible_ms is None:
            created = int(self.snap.meta.get("created_ms") or self.snap.now_ms)
            self.state = replace(self.state, first_visible_ms=max(0, self.now_ms() - created))
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

    # ending ----------------------------------------------------------------------------------
    def _offsets(self, complete: bool) -> Offsets:
        segs = self.state.segments
        end = self.snap.window.end
        read_c = max(self.snap.window.base, delivery.read_from(segs)) if segs else 0
        delivered_c = max(read_c, delivery.delivered_until(segs, end))
        # while an older edit may still land, the next pass reads the whole text: the final
        # shows every message's text again, the ones before the open message too
        read_b = 0 if self.state.doubt_ms else self.snap.byte_offset(read_c)
        return Offsets(
            flushed_b=self.snap.text_b if complete else self.snap.flushed_b,
            delivered_b=self.snap.byte_offset(min(delivered_c, end)),
            read_b=read_b,
            read_c=0 if self.state.doubt_ms else read_c,
        )

    def _commit(self) -> None:
        version = self.f.store.commit(
            self.snap.stream_id, self.lease.token, self.state, self._offsets(False), stamp=True
        )
        if version < 0:
            raise LeaseLost(f"{self.snap.stream_id}: fenced")
        self.created.clear()
        self.state = replace(self.state, version=version)

    def _end(self) -> Next:
        if self.final and self.defer_ms is None:
            return self._finish()
        if self.final and self._overdue():
            return self._finish(gave_up=True)
        ended = self.f.store.end(
            self.snap.stream_id, self.lease.token, self.state,
            self._offsets(complete=self.defer_ms is None),
            stamp=self.performed > 0,
            defer_ms=-1 if self.defer_ms is None else self.defer_ms,
            ticket_ms=self.ticket_ms,
            orphans_done=self.orphans_done,
        )
        if ended.fenced:
            raise LeaseLost(f"{self.snap.stream_id}: fenced at the end of a pass")
        return Next(ended.due_ms)

    def _overdue(self) -> bool:
        closed = int(self.snap.meta.get("closed_ms") or self.snap.now_ms)
        return self.now_ms() - closed > self.f.settings.final_deadline * 1000

    def _finish(self, gave_up: bool = False) -> Next:
        deadline = self.f.settings.final_deadline if gave_up else None
        result = stop_result(self.snap, self.state, deadline).to_dict()
        metrics.finished(self.snap, result, self.now_ms())
        published = self.f.store.finish(
            self.snap.stream_id, self.lease.token, self.state, result,
            int(self.f.settings.result_ttl),
        )
        if not published:
            done = self.f.store.result(self.snap.stream_id)
            if done is None:
                raise LeaseLost(f"{self.snap.stream_id}: fenced before publishing")
            result = done
        self.created.clear()
        return Next(-1, result=result, status="closed")

    def _hand_over(self) -> None:
        """We lost the stream (or cannot record it): messages we created but did not record go
        to the next owner, which adopts or deletes them. If Redis cannot take them now, this
        process keeps them and hands them over as soon as it can (Flusher.hand_over_pending)."""
        for index, message_id in self.created:
            self.f.pending_orphans.append((self.snap.stream_id, index, message_id))
        self.created.clear()
        self.f.hand_over_pending()


def op_key(stream_id: str, index: int, resent: int = 0) -> str:
    """The idempotency key of segment ``index``'s send: stable across retries and workers (and
    new once the message was deleted and is sent anew), 25 characters of [0-9a-f] (Discord's
    nonce limit)."""
    return hashlib.sha256(f"{stream_id}:{index}:{resent}".encode()).hexdigest()[:25]
