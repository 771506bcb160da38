"""Small helpers shared by the integration tests."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

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


def stream_reply(
    producer: Any, channel: str, chat_id: str, text: str = SAMPLE, per_second: float = 200.0,
    timeout: float = 60.0, **start: Any,
) -> Any:
    """One stream of ``text`` emitted at ``per_second`` tokens/s, then stopped: its StopResult."""
    stream = producer.start(channel=channel, chat_id=chat_id, **start)
    emit_paced(stream, text, per_second=per_second)
    return stream.stop(timeout=timeout)


def stream_concurrently(
    producer: Any, channel: str, chats: list[str], text: str = SAMPLE, per_second: float = 200.0,
    interval: float = 0.1, timeout: float = 60.0,
) -> list[Any]:
    """One stream per chat, all emitting at once from their own threads, then each stopped:
    their StopResults in the order of ``chats``."""
    streams = [producer.start(channel=channel, chat_id=c, interval=interval) for c in chats]
    threads = [threading.Thread(target=emit_paced, args=(s, text, per_second)) for s in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [s.stop(timeout=timeout) for s in streams]


@contextlib.contextmanager
def configured(emulator: Any, during: dict[str, Any], after: dict[str, Any]) -> Iterator[Any]:
    """``emulator`` with the knobs ``during`` for the block, set to ``after`` when it ends."""
    emulator.configure(**during)
    try:
        yield emulator
    finally:
        emulator.configure(**after)


def assert_never_backwards(message: Any, why: str, loose: bool = False) -> None:
    """Every text the message showed starts with the one before (``loose``: but for the
    last visible character, which rendering may hold back while markup is open)."""
    for (_, before), (_, after) in itertools.pairwise(message.history):
        shown = before.rstrip()[:-1] if loose else before
        assert after.startswith(shown), (why, before, after)


def assert_retry_after_waited(calls: list[Any], why: str, slack: float = 0.05) -> None:
    """After every 429 among ``calls`` (in arrival order), the next call came no sooner
    than the answer's ``retry_after`` seconds (less ``slack``)."""
    for prev, nxt in itertools.pairwise(calls):
        if prev.status == 429:
            assert nxt.t - prev.t >= prev.retry_after - slack, why


def calls_in(emulator: Any, chat_id: str) -> list[Any]:
    """The emulator's calls about one chat, in arrival order."""
    return [c for c in emulator.calls if c.chat_id == chat_id]


def first_429_and_later_successes(emulator: Any, chat_id: str) -> tuple[list[Any], list[Any]]:
    """The chat's 429 answers, and its successful calls after the first of them."""
    calls = calls_in(emulator, chat_id)
    limited = [c for c in calls if c.status == 429]
    later = [c for c in calls if c.ok and c.t > limited[0].t] if limited else []
    return limited, later


def env_account(monkeypatch: Any, platform: str, names: Iterator[int],
                settings: dict[str, str]) -> str:
    """A new account name on ``platform`` whose TOKENRELAY_* settings are ``settings`` (for
    this test only)."""
    name = f"acct{id(monkeypatch)}x{next(names)}"
    for key, value in settings.items():
        monkeypatch.setenv(f"TOKENRELAY_{platform.upper()}_{name.upper()}_{key.upper()}", value)
    return name


def stream_around_deletion(
    producer: Any, emulator: Any, channel: str, chat_id: str, delete: Callable[[], None],
) -> Any:
    """Stream "first part"; once the chat shows it, ``delete()`` it (the user deletes the
    message) and go on with ", second part": the StopResult."""
    stream = producer.start(channel=channel, chat_id=chat_id, interval=0.1)
    stream.emit("first part")
    assert emulator.wait_for(lambda e: e.texts(chat_id) == ["first part"], timeout=10)
    delete()
    stream.emit(", second part")
    return stream.stop(timeout=30)
