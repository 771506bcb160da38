"""Shared rate budgets: GCRA in Redis on server time, so every worker on every host agrees, with
a queue per budget so waiting costs nothing and is fair (see ``store/lua/rate_take.lua``).

Finals and first sends go before interim edits; interim edits also leave one slot of every
burst to them. A stream that cannot go now gets a *ticket*, its own wake-up time in the
budget's queue, and is scheduled for then: waiters wake one emission interval apart instead of
all at once. A 429 pushes the named budget's clock past ``retry_after``; when the answer does
not say which limit was hit, the chat's budget waits and the bot's adaptive rate backs off.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from tokenrelay.store import Store, rate_key
from workers.channels.base import Budget
from workers.channels.errors import RateLimited

#: multiplicative cut of an adaptive rate on a 429 (AIMD's decrease; its increase is linear in
#: time, see tokenrelay.store.STEP_UP)
CUT = 0.7


def _emission_ms(budget: Budget) -> int:
    return max(1, round(1000.0 / budget.per_second))


class RateLimiter:
    """Takes slots from a call's budgets, or answers when to come back."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def take(self, budgets: Sequence[Budget], priority: bool, ticket_ms: int) -> tuple[int, int]:
        """(0, 0) when a slot was taken from every budget, else (ms to wait, ticket: the
        server time to come back at, holding a place in line)."""
        if not budgets:
            return 0, 0
        scopes = {b.scope for b in budgets}
        if len(scopes) != 1:
            raise ValueError(f"one call's budgets must share one scope, not {sorted(scopes)}")
        rows = [(rate_key(b.scope, b.name), _emission_ms(b), b.burst, b.adaptive) for b in budgets]
        return self.store.rate_take(rows, priority, ticket_ms, random.random())

    def penalize(self, budgets: Sequence[Budget], exc: RateLimited) -> None:
        """The platform said 429: nobody uses the budget it named for ``retry_after``."""
        if not budgets:
            return
        named = budgets[-1] if exc.scope == "global" else budgets[0]
        adaptive = next((b for b in budgets if b.adaptive), None)
        emission = _emission_ms(named)
        self.store.rate_penalize(
            rate_key(named.scope, named.name),
            None if adaptive is None or exc.scope == "global" else rate_key(
                adaptive.scope, adaptive.name
            ),
            int(exc.retry_after * 1000),
            emission * max(0, named.burst - 1),
            CUT,
        )
