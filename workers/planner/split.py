"""Where a too-long segment is cut: the latest paragraph, line or word boundary that fits.

Pure functions, no I/O. Lengths are counted in a channel's own units (Telegram: UTF-16 code
units), so the caller passes the unit size of each character.
"""

from __future__ import annotations

from collections.abc import Callable

#: a boundary cut is used only if it keeps at least this share of the allowed length
MIN_FILL = 0.5
#: separators tried in order of preference; the cut goes right after the separator
BOUNDARIES = ("\n\n", "\n", " ")

UnitCounter = Callable[[str], int]


def utf16_units(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (astral characters such as emoji count 2)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def char_units(text: str) -> int:
    """Length in code points (Discord, Slack and most others)."""
    return len(text)


def fit_end(text: str, start: int, limit: int, units: UnitCounter = utf16_units) -> int:
    """The largest ``end`` such that ``units(text[start:end]) <= limit``.

    >>> fit_end("ab😀cd", 0, 3)
    2
    """
    if limit <= 0:
        raise ValueError("limit must be positive")
    if units is char_units:
        return min(len(text), start + limit)
    if units is utf16_units:
        used = 0
        for i in range(start, len(text)):
            used += 2 if ord(text[i]) > 0xFFFF else 1
            if used > limit:
                return i
        return len(text)
    lo, hi = start, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if units(text[start:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def find_cut(
    text: str, start: int, limit: int, units: UnitCounter = utf16_units, keep: int = 0
) -> int:
    """Where to end the segment that starts at ``start`` when ``text[start:]`` is too long.

    Prefers a paragraph break, then a line break, then a space, as late as fits; falls back to
    a hard cut at the limit. Never cuts before ``keep`` when ``text[start:keep]`` fits (what a
    message already shows is never taken back from it). Always returns ``start < cut <
    len(text)`` when the text is too long, so the caller can never loop.

    >>> find_cut("aaaa bbbb cccc", 0, 11, char_units)
    10
    """
    hard = fit_end(text, start, limit, units)
    if hard >= len(text):
        return len(text)
    hard = max(hard, start + 1)
    floor = start + max(1, int((hard - start) * MIN_FILL))
    if keep > floor:
        if keep >= hard:
            return hard
        floor = keep
    for sep in BOUNDARIES:
        pos = text.rfind(sep, start, hard)
        while pos != -1:
            cut = pos + len(sep)
            if cut <= hard and cut >= floor and text[start:pos].strip():
                return cut
            if pos < floor:
                break
            pos = text.rfind(sep, start, pos)
    return hard
