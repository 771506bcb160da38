"""The delivery planner: text + sent state + channel limits -> the sends and edits to make.

Pure functions, no I/O, so every rule here is unit- and property-tested.

A stream's text is carried by one or more chat messages; each message carries one
*segment* of the text. Only the last segment is *open* (it grows as tokens arrive); earlier
segments were *closed* at a cut chosen once, at a paragraph/line/word boundary, when the
open one outgrew the channel's limit. Offsets are absolute character offsets into the
stream's text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from tokenrelay.store.sent import Segment
from tokenrelay.store.snapshot import Window
from workers.planner.split import UnitCounter, find_cut, utf16_units


@dataclass(frozen=True)
class Limits:
    """What the planner needs to know about a channel."""

    max_units: int
    units: UnitCounter = utf16_units
    can_edit: bool = True


@dataclass(frozen=True)
class Op:
    """One call to make: send segment ``index`` as a new message, or edit its message."""

    kind: Literal["send", "edit"]
    index: int
    start: int
    end: int
    message_id: str | None = None


@dataclass(frozen=True)
class Plan:
    segments: tuple[Segment, ...]
    ops: tuple[Op, ...]


def read_from(segments: Sequence[Segment]) -> int:
    """The first offset the planner needs: the earliest segment that is not fully shown, or open."""
    for seg in segments:
        if seg.cut is None or seg.shown < seg.cut or seg.message_id is None:
            return seg.start
    return segments[-1].cut if segments and segments[-1].cut is not None else 0


def plan(
    window: Window,
    segments: Sequence[Segment],
    limits: Limits,
    horizon: int | None = None,
) -> Plan:
    """Decide the sends and edits that make the chat show ``text[:horizon]``.

    ``horizon`` (default: all text in the window) lets a non-editing channel deliver only up to
    a tool boundary. Closed segments keep their cut forever; only the open segment is split,
    once, when it outgrows ``limits.max_units``. Whitespace-only text is never sent.
    """
    end = window.end if horizon is None else min(horizon, window.end)
    segs = list(segments) or [Segment(None, 0, None, 0)]
    if not limits.can_edit:
        segs = _close_sent_open_segment(segs, end)
    segs = _split_open_segment(window, segs, end, limits)

    ops: list[Op] = []
    for i, seg in enumerate(segs):
        target = min(seg.target(end), end)
        if seg.shown == target and (seg.message_id is not None or seg.start == target):
            continue
        wanted = window.slice(seg.start, target).strip() if target > seg.start else ""
        if not wanted:
            if seg.message_id is None:
                segs[i] = replace(seg, shown=target)
            continue
        if seg.message_id is None:
            ops.append(Op("send", i, seg.start, target))
        elif window.slice(seg.start, seg.shown).strip() == wanted:
            segs[i] = replace(seg, shown=target)
        elif limits.can_edit:
            ops.append(Op("edit", i, seg.start, target, seg.message_id))
    return Plan(tuple(segs), tuple(ops))


def _close_sent_open_segment(segs: list[Segment], end: int) -> list[Segment]:
    """A channel that cannot edit never touches a sent message again: new text opens a new one."""
    last = segs[-1]
    if last.cut is None and last.message_id is not None and end > last.shown:
        segs[-1] = replace(last, cut=last.shown)
        segs.append(Segment(None, last.shown, None, last.shown))
    return segs


def _split_open_segment(
    window: Window, segs: list[Segment], end: int, limits: Limits
) -> list[Segment]:
    """Cut the open segment at boundaries until its text fits the channel's limit."""
    text = window.text[: end - window.base]
    while True:
        last = segs[-1]
        if limits.units(window.slice(last.start, end)) <= limits.max_units:
            return segs
        keep = last.shown - window.base if last.message_id is not None else 0
        cut = window.base + find_cut(
            text, last.start - window.base, limits.max_units, limits.units, keep
        )
        segs[-1] = replace(last, cut=cut, shown=min(last.shown, cut))
        segs.append(Segment(None, cut, None, cut))


def resplit(
    window: Window, segments: Sequence[Segment], index: int, limits: Limits
) -> tuple[Segment, ...] | None:
    """Cut closed segment ``index`` again at ``limits`` (the platform refused it as too long).

    Only while no later segment has a message yet, so the chat keeps the text's order; None
    when that is no longer possible.
    """
    seg = segments[index]
    if seg.cut is None or any(s.message_id is not None for s in segments[index + 1 :]):
        return None
    text = window.text[: seg.cut - window.base]
    pieces: list[Segment] = []
    start = seg.start
    while limits.units(window.slice(start, seg.cut)) > limits.max_units:
        cut = window.base + find_cut(text, start - window.base, limits.max_units, limits.units)
        pieces.append(Segment(None, start, cut, start))
        start = cut
    pieces.append(Segment(None, start, seg.cut, start))
    # the first piece keeps the message (it will be edited down to its new cut)
    first_cut = pieces[0].cut
    pieces[0] = replace(seg, cut=first_cut, shown=min(seg.shown, first_cut or seg.shown),
                        sealed=False)
    return (*segments[:index], *pieces, *segments[index + 1 :])


def apply(
    segments: Sequence[Segment], op: Op, message_id: str | None = None, sealed: bool = False
) -> tuple[Segment, ...]:
    """The segments after ``op`` succeeded (``message_id``: the new message of a send;
    ``sealed``: it was rendered as finished text)."""
    segs = list(segments)
    seg = segs[op.index]
    segs[op.index] = replace(
        seg,
        shown=op.end,
        message_id=message_id if op.kind == "send" else seg.message_id,
        sealed=sealed,
    )
    return tuple(segs)


def seal(
    window: Window,
    segments: Sequence[Segment],
    ops: Sequence[Op],
    differs: Callable[[Segment, str], bool],
) -> tuple[Op, ...]:
    """At stop: add an edit for every shown segment whose finished rendering differs from the
    growing one it was last shown with (``differs(segment, text)`` asks the channel)."""
    planned = {op.index for op in ops}
    extra = [
        Op("edit", i, seg.start, seg.target(window.end), seg.message_id)
        for i, seg in enumerate(segments)
        if i not in planned
        and seg.message_id is not None
        and not seg.sealed
        and seg.shown == seg.target(window.end)
        and seg.start >= window.base
        and differs(seg, window.slice(seg.start, seg.shown).strip())
    ]
    return tuple(sorted([*ops, *extra], key=lambda op: op.index))


def unsent(segments: Sequence[Segment], text_end: int) -> int:
    """Characters of text the chat does not show yet (0 when everything is delivered)."""
    return sum(max(0, seg.target(text_end) - seg.shown) for seg in segments)


def delivered_until(segments: Sequence[Segment], text_end: int) -> int:
    """The offset up to which the chat shows every character, contiguously."""
    upto = 0
    for seg in segments:
        target = seg.target(text_end)
        if seg.shown < target:
            return seg.shown if seg.message_id is not None else upto
        upto = target
    return upto


def reassert(window: Window, segments: Sequence[Segment], ops: Sequence[Op]) -> tuple[Op, ...]:
    """Add an edit of every shown segment that no op touches yet: the chat shows each message's
    text again, so an older edit that landed late (a lost answer, a stale worker) is not the
    last word. An edit that changes nothing costs one "not modified"."""
    planned = {op.index for op in ops}
    extra = [
        Op("edit", i, seg.start, seg.shown, seg.message_id)
        for i, seg in enumerate(segments)
        if i not in planned and seg.message_id is not None and seg.shown > seg.start
        and seg.start >= window.base
    ]
    return tuple(sorted([*ops, *extra], key=lambda op: op.index))


def settle_orphans(
    segments: Sequence[Segment], orphans: Sequence[tuple[int, str]]
) -> tuple[tuple[Segment, ...], list[str]]:
    """Messages a stale worker created but never recorded: adopt one as its segment's message
    when that segment has none yet (it is edited to the right text next), else it is a copy to
    delete. Returns the segments and the message ids to delete."""
    segs = list(segments)
    copies = []
    for index, message_id in orphans:
        if 0 <= index < len(segs) and segs[index].message_id is None:
            seg = segs[index]
            segs[index] = replace(seg, message_id=message_id, shown=seg.start, sealed=False)
        elif not any(s.message_id == message_id for s in segs):
            copies.append(message_id)
    return tuple(segs), copies
