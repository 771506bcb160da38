"""Shared rate budgets: GCRA in Redis (server TIME), so every worker on every host agrees.

Interim edits keep one slot of each budget free for final deliveries: when a chat is busy the
interim edits are skipped (the stream catches up on its next flush) and the final still goes
out first. A 429 from the platform pushes the budget's clock past ``retry_after``.
"""

from __future__ import annotations

from collections.abc import Sequence

from workers.channels.base import Budget
from workers.state import Store, rate_key


def _ms(budget: Budget) -> tuple[int, int]:
    emission = max(1, round(1000.0 / budget.per_second))
    return emission, emission * max(0, budget.burst - 1)


class RateLimiter:
    """Takes slots from a call's budgets; answers how long to wait when they are spent."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def take(self, budgets: Sequence[Budget], final: bool) -> float:
        """0.0 when a slot was taken from every budget, else seconds until one is free."""
        if not budgets:
            return 0.0
        rows = []
        for b in budgets:
            emission, tolerance = _ms(b)
            if not final:
                tolerance = max(0, tolerance - emission)
            rows.append((rate_key(b.scope, b.name), emission, tolerance))
        return self.store.rate_take(rows) / 1000.0

    def penalize(self, budget: Budget, retry_after: float) -> None:
        """The platform said 429: nobody uses ``budget`` for ``retry_after`` seconds."""
        _, tolerance = _ms(budget)
        self.store.rate_penalize(
            rate_key(budget.scope, budget.name), int(retry_after * 1000), tolerance
        )
