"""Per-process singletons of a worker: settings, the Redis store and the flusher.

Built on first use from the environment, so a test or the demo sets TOKENRELAY_* first and a
real worker reads the same variables as the producers.
"""

from __future__ import annotations

import threading

from tokenrelay.config import Settings
from workers.flusher import Flusher
from workers.state import Store

_lock = threading.Lock()
_flusher: Flusher | None = None


def flusher() -> Flusher:
    """This process's Flusher (created on first call)."""
    global _flusher
    if _flusher is None:
        with _lock:
            if _flusher is None:
                settings = Settings.from_env()
                _flusher = Flusher(Store.from_url(settings.redis_url), settings)
    return _flusher


def reset() -> None:
    """Forget the singletons (the next task reads the environment again)."""
    global _flusher
    with _lock:
        _flusher = None
