"""The worker bootstep that runs the flush engine beside Celery's consumer in every worker, and
its ``/metrics`` endpoint when ``TOKENRELAY_METRICS_PORT`` is set."""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps

log = logging.getLogger(__name__)


class FlushEngineStep(bootsteps.StartStopStep):
    """Starts this worker's flush engine (and metrics endpoint) with the worker and stops them
    at shutdown."""

    label = "tokenrelay flush engine"

    def start(self, worker: Any) -> None:
        from workers import metrics, runtime

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
        metrics.serve(engine.settings, engine.store)

    def stop(self, worker: Any) -> None:
        from workers import metrics, runtime

        metrics.stop_serving()
        runtime.reset()
