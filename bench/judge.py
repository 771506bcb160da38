"""Verdicts read from the emulator's ledger: what the chat shows, and when it showed it.

Nothing here trusts what either side says it did; only the platform's view counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.agents import Reply


def squash(text: str) -> str:
    """Text without whitespace: Telegram trims messages at their ends and at split points."""
    return "".join(text.split())


@dataclass(frozen=True)
class Verdict:
    """One reply as the chat shows it."""

    emitted: int  #: characters the agent wrote
    visible: int  #: characters of the reply the chat shows, from its start, in order
    complete: bool  #: every character of the reply is visible, in order
    exact: bool  #: complete, and nothing shown twice (whitespace at message ends aside)
    duplicates: int  #: messages repeating text another message shows (re-sent after a failure)
    messages: int
    first_ms: float | None  #: start of the stream -> first message visible
    final_ms: float | None  #: stop() called -> the whole reply visible (None: never)


@dataclass(frozen=True)
class Side:
    """Everything one side of a scenario left in the emulator's ledger."""

    verdicts: list[Verdict]
    http_429: int  #: calls answered 429, all chats of the side
    calls: int  #: Bot API calls made, faulted ones included
    strays: int  #: messages that belong to no reply (garbage)


def judge_side(emu: Any, replies: Sequence[Reply]) -> Side:
    """Judge every reply; replies may share a chat (each message goes to the reply it quotes)."""
    by_chat: dict[str, list[Reply]] = {}
    for r in replies:
        by_chat.setdefault(r.job.chat_id, []).append(r)
    verdicts: dict[int, Verdict] = {}
    strays = 0
    for chat, group in by_chat.items():
        msgs = emu.messages(chat)
        owned = [[m for m in msgs if squash(m.text) in squash(r.job.text)] for r in group]
        strays += sum(not any(m in o for o in owned) for m in msgs)
        for r, mine in zip(group, owned, strict=True):
            verdicts[id(r)] = judge(r, mine)
    return Side(
        verdicts=[verdicts[id(r)] for r in replies],
        http_429=emu.count(status=429),
        calls=len(emu.calls),
        strays=strays,
    )


def judge(reply: Reply, msgs: Sequence[Any]) -> Verdict:
    """One reply, from the chat messages that carry its text (in message order)."""
    text = reply.job.text
    kept = [m for i, m in enumerate(msgs) if not _repeated(m.text, msgs[i + 1 :])]
    shown = "".join(m.text for m in kept)
    complete = squash(shown) == squash(text)
    first = min((m.created_at for m in msgs), default=None)
    final = max((_reached(m) for m in kept), default=None) if complete else None
    return Verdict(
        emitted=len(text),
        visible=_prefix(text, shown),
        complete=complete,
        exact=complete and len(kept) == len(msgs),
        duplicates=len(msgs) - len(kept),
        messages=len(msgs),
        first_ms=None if first is None else (first - reply.t_start) * 1000,
        final_ms=None if final is None else max(0.0, final - reply.t_stop) * 1000,
    )


def _repeated(text: str, later: Iterable[Any]) -> bool:
    """A message whose text a later message starts with again: the same send, made twice."""
    mine = squash(text)
    return any(squash(m.text).startswith(mine) for m in later)


def _reached(message: Any) -> float:
    """When the message first showed its final text."""
    return next(t for t, seen in message.history if seen == message.text)


def _prefix(text: str, shown: str) -> int:
    """How many characters of ``text``, from its start, ``shown`` carries (whitespace-blind)."""
    flat = squash(shown)
    i = upto = 0
    for pos, ch in enumerate(text):
        if ch.isspace():
            continue
        if i >= len(flat) or flat[i] != ch:
            return upto
        i += 1
        upto = pos + 1
    return len(text)


def pct(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile (nearest rank); None ("never") counts as larger than any value."""
    xs = sorted(values, key=lambda v: math.inf if v is None else v)
    if not xs:
        return None
    return xs[min(len(xs) - 1, max(0, math.ceil(q / 100 * len(xs)) - 1))]


def totals(side: Side) -> dict[str, float | None]:
    """The figures every scenario table reports for one side."""
    verdicts = side.verdicts
    return {
        "visible": sum(v.visible for v in verdicts),
        "emitted": sum(v.emitted for v in verdicts),
        "exact": sum(v.exact for v in verdicts),
        "duplicates": sum(v.duplicates for v in verdicts) + side.strays,
        "http_429": side.http_429,
        "calls": side.calls,
        "first_p50": pct((v.first_ms for v in verdicts), 50),
        "first_p99": pct((v.first_ms for v in verdicts), 99),
        "final_p50": pct((v.final_ms for v in verdicts), 50),
        "final_max": pct((v.final_ms for v in verdicts), 100),
    }
