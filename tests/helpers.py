"""Small helpers shared by the integration tests."""

from __future__ import annotations

import time
from collections.abc import Iterator

SAMPLE = (
    "Sure! Here is how the pipeline works.\n\n"
    "The agent emits tokens; a background pusher moves them to Redis in batches. "
    "A debounced flush task edits the chat message at most once per interval, and the stop "
    "task delivers whatever is still unsent. 😀 Emoji count twice in Telegram's UTF-16 rule.\n\n"
    "That is all there is to it."
)


def tokens(text: str, size: int = 4) -> Iterator[str]:
    """``text`` cut into LLM-sized tokens."""
    for i in range(0, len(text), size):
        yield text[i : i + size]


def emit_paced(stream, text: str, per_second: float = 400.0, size: int = 4) -> None:
    """Emit ``text`` at an LLM-like pace (this paces the producer; it synchronizes nothing)."""
    gap = 1.0 / per_second
    for tok in tokens(text, size):
        stream.emit(tok)
        time.sleep(gap)


def squash(text: str) -> str:
    """Text without whitespace: messages are trimmed at their ends and at split points."""
    return "".join(text.split())
