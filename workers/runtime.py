"""Per-process singletons of a worker: settings, the Redis store, the flusher and the engine.

Built on first use from the environment, so a test or the demo sets TOKENRELAY_* first and a
real worker reads the same variables as the producers.
"""

from __future__ import annotations

import threading

from tokenrelay.config import Settings
from tokenrelay.store import Schedules, Store
from workers.engine import FlushEngine
from workers.flusher import Flusher

_lock = threading.Lock()
_flusher: Flusher | None = None
_engine: FlushEngine | None = None


def flusher() -> Flusher:
    """This process's Flusher (created on first call)."""
    global _flusher
    if _flusher is None:
        with _lock:
            if _flusher is None:
                settings = Settings.from_env()
                store = Store.from_url(
                    settings.redis_url, max_connections=settings.flush_threads + 16,
                    schedules=Schedules(settings.queue, settings.shards),
                )
                _flusher = Flusher(store, settings)
    return _flusher


def engine() -> FlushEngine:
    """This process's flush engine (created, not started, on first call)."""
    global _engine
    f = flusher()
    with _lock:
        if _engine is None:
            _engine = FlushEngine(f, f.settings)
        return _engine


def reset() -> None:
    """Forget the singletons (the next task reads the environment again); stops the engine."""
    global _flusher, _engine
    with _lock:
        running, _engine, _flusher = _engine, None, None
    if running is not None:
        running.stop()
