"""The store: every stream's state in Redis, shared by producers, workers and the apps.

``keys`` names every key, ``scripts`` runs the Lua scripts (``lua/``, one per atomic
operation), ``sent`` and ``snapshot`` are the data they read and write, ``store`` is the one
client class and ``views`` its read-only monitoring side.
"""

from tokenrelay.store.keys import Keys, Schedules, StreamNotFound, rate_key, shard_of
from tokenrelay.store.sent import COUNTERS, Segment, SentState
from tokenrelay.store.snapshot import Begun, Claims, Ended, Offsets, Snapshot, Window
from tokenrelay.store.store import STEP_UP, Store

__all__ = [
    "COUNTERS",
    "STEP_UP",
    "Begun",
    "Claims",
    "Ended",
    "Keys",
    "Offsets",
    "Schedules",
    "Segment",
    "SentState",
    "Snapshot",
    "Store",
    "StreamNotFound",
    "Window",
    "rate_key",
    "shard_of",
]
