"""The worker bootstep that runs the flush engine beside Celery's consumer in every worker."""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps

log = logging.getLogger(__name__)


class FlushEngineStep(bootsteps.StartStopStep):
    """Starts this worker's flush engine with the worker and stops it at shutdown."""

    label = "tokenrelay flush engine"

    def start(self, worker: Any) -> None:
        from workers import runtime

        engine = runtime.engine()
        policy = engine.store.memory_policy()
        if policy not in (None, "noeviction"):
            log.warning(
                "Redis maxmemory-policy is %r: under memory pressure Redis may evict stream "
                "state, and those streams end as 'lost'. Set it to noeviction.", policy,
            )
        engine.start()
        log.info("tokenrelay flush engine started: %d threads, %d shards",
                 engine.threads, engine.settings.shards)

    def stop(self, worker: Any) -> None:
        from workers import runtime

        runtime.reset()
