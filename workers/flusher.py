"""One pass over one stream, in four steps: begin (one Redis call: tick, lease, snapshot) ->
plan (pure, ``workers.planner``) -> perform (channel calls under the lease) -> end (one Redis
call: commit, release, settle; or finish: publish the result). The last three are
``workers.flush_pass``.

An open stream gets an interim pass (what the producer wrote so far, if the budget allows); a
closing stream gets its final pass (everything unsent, first in line for budgets, then the
StopResult). The flush engine and the stop task both run passes; the lease makes one at a time
happen.
"""

from __future__ import annotations

import logging
import threading
import time

from tokenrelay.config import Settings
from tokenrelay.store import Store
from workers.channels import ClientCache
from workers.flush_pass import FlushPass, Next
from workers.lease import LeaseKeeper, owner_token
from workers.ratelimit import RateLimiter

log = logging.getLogger(__name__)


class Flusher:
    """Runs passes; one per worker process, shared by its threads."""

    def __init__(self, store: Store, settings: Settings, clients: ClientCache | None = None):
        self.store = store
        self.settings = settings
        self.leases = LeaseKeeper(store, settings.lease_ttl)
        self.clients = clients or ClientCache(settings)
        self.limiter = RateLimiter(store)
        #: (stream, segment, message id) of messages created but not yet handed over
        self.pending_orphans: list[tuple[str, int, str]] = []
        self._orphans_lock = threading.Lock()

    def hand_over_pending(self) -> None:
        """Record the messages this process created but could not record (the engine calls
        this on every round, so an outage only delays it)."""
        with self._orphans_lock:
            pending, self.pending_orphans = self.pending_orphans, []
        for n, (stream_id, index, message_id) in enumerate(pending):
            try:
                self.store.orphan(stream_id, index, message_id)
            except Exception as exc:
                with self._orphans_lock:
                    self.pending_orphans.extend(pending[n:])
                log.warning("stream %s: message %s not handed over yet (%s); retrying",
                            stream_id, message_id, type(exc).__name__)
                return

    def run(self, stream_id: str) -> Next:
        """One pass: interim for an open stream, final for a closing one."""
        token = owner_token()
        sent_at = time.monotonic()
        begun = self.store.begin(stream_id, token, self.leases.ttl_ms)
        if begun.snapshot is None:
            due = begun.due_ms if begun.status in ("early", "busy") else -1
            return Next(due, status=begun.status)
        lease = self.leases.track(stream_id, token, sent_at)
        try:
            nxt = FlushPass(self, begun.snapshot, lease).execute()
        finally:
            self.leases.untrack(lease)
        if nxt.result is not None:
            self.store.unwatch(stream_id)
        return nxt
