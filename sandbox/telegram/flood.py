"""Flood control: per-chat and per-bot token buckets, and the growing penalty for ignoring 429."""

from __future__ import annotations

import math

from sandbox.telegram.knobs import Knobs

__all__ = ["PENALTY_STEP", "FloodControl", "TokenBucket", "is_private"]

#: seconds a chat's flood penalty grows by for each call it makes while already answered 429
PENALTY_STEP = 1.0


class TokenBucket:
    """Tokens refill continuously at ``rate`` per second, up to ``burst``; a request takes one."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = now

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0.0 when one is available now)."""
        if now > self._stamp:
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
        missing = 1.0 - self._tokens
        return 0.0 if missing <= 1e-9 else missing / self.rate

    def take(self, now: float) -> None:
        """Spend one token (call ``wait`` first: the bucket does not refuse)."""
        self.wait(now)
        self._tokens -= 1.0


def is_private(chat_id: str) -> bool:
    """Chats with a non-negative numeric id are private; groups and @channels are not."""
    return chat_id.isdigit()


class FloodControl:
    """Telegram-style flood limits for sends and edits, with growing penalties.

    A call needs one token from its chat's bucket (private chats: ``private_rate`` per second;
    groups, chat_id < 0: ``group_per_minute`` per minute) and one from its bot's global bucket.
    If either is empty the call is refused with ``retry_after = ceil(wait)`` (at least 1) and
    takes nothing. The refusal opens a penalty window for the chat until the token is due; every
    further call to the chat inside the window is refused too and extends the window by
    ``PENALTY_STEP`` seconds, so a client that ignores retry_after is told to wait longer and
    longer, while one that waits as told finds its token ready.
    """

    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self._chats: dict[tuple[int, str], TokenBucket] = {}
        self._bots: dict[int, TokenBucket] = {}
        self._penalty_until: dict[tuple[int, str], float] = {}

    def acquire(self, bot_id: int, chat_id: str, now: float) -> int | None:
        """Take a token for one call; return None if granted, else retry_after in seconds."""
        key = (bot_id, chat_id)
        until = self._penalty_until.get(key, 0.0)
        if now < until:
            until += PENALTY_STEP
            self._penalty_until[key] = until
            return max(1, math.ceil(until - now))
        chat = self._chats.get(key)
        if chat is None:
            chat = self._chats[key] = self._chat_bucket(chat_id, now)
        bot = self._bots.get(bot_id)
        if bot is None:
            k = self.knobs
            bot = self._bots[bot_id] = TokenBucket(k.global_rate, k.global_burst, now)
        wait = max(chat.wait(now), bot.wait(now))
        if wait > 0:
            self._penalty_until[key] = now + wait
            return max(1, math.ceil(wait))
        chat.take(now)
        bot.take(now)
        return None

    def _chat_bucket(self, chat_id: str, now: float) -> TokenBucket:
        k = self.knobs
        if is_private(chat_id):
            return TokenBucket(k.private_rate, k.private_burst, now)
        return TokenBucket(k.group_per_minute / 60.0, k.group_burst, now)
