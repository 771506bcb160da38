"""The one backoff rule of tokenrelay: full-jitter exponential.

In-call HTTP retries (through tenacity), rescheduled flushes and stop retries all use it, so
waiters after an outage spread out instead of coming back together.
"""

from __future__ import annotations

import random


def backoff(attempt: int, initial: float, cap: float) -> float:
    """Seconds before try ``attempt + 1``: uniform in [0, min(cap, initial * 2**attempt)]."""
    return random.uniform(0, min(cap, initial * 2 ** min(max(attempt, 0), 30)))


def spread(delay: float, fraction: float = 0.1) -> float:
    """``delay`` plus up to ``fraction`` of it at random (scheduled wake-ups never coincide)."""
    return delay + random.uniform(0, max(delay, 0.0) * fraction)
