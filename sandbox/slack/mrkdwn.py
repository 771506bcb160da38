"""What Slack shows for a mrkdwn text: markers paired at word boundaries, links, escapes.

The emulator's reading of mrkdwn, strict where Slack is: ``&`` must start ``&amp;``, ``&lt;`` or
``&gt;``, and a ``<`` must close its ``<url|label>`` on the same line (else ``MrkdwnError``).

    >>> visible_text("*bold* &amp; <https://x.io|docs>")
    'bold & docs'
"""

from __future__ import annotations

import re

__all__ = ["ZWSP", "MrkdwnError", "unescape", "visible_text"]

ZWSP = "\u200b"
_FENCE = re.compile(r"```\n?(.*?)\n?```", re.DOTALL)
_ENTITY = re.compile(r"&(amp|lt|gt);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">"}


class MrkdwnError(ValueError):
    """Text Slack would not show as written (a bare ``&`` or an unclosed ``<``)."""


def unescape(text: str) -> str:
    """Decode Slack's three escapes; MrkdwnError for any other ``&``."""
    if "&" in _ENTITY.sub("", text):
        raise MrkdwnError("bare & (escape it as &amp;)")
    return _ENTITY.sub(lambda m: _NAMED[m[1]], text)


def _boundary(char: str) -> bool:
    return not char or char.isspace() or (char.isascii() and not char.isalnum())


def _inline(line: str) -> str:
    out: list[str] = []
    stack: list[tuple[str, int]] = []
    i = 0
    while i < len(line):
        char = line[i]
        before, after = line[i - 1] if i else "", line[i + 1] if i + 1 < len(line) else ""
        if char == "<":
            end = line.find(">", i)
            if end < 0 or "<" in line[i + 1 : end]:
                raise MrkdwnError("unclosed <")
            url, _, label = line[i + 1 : end].partition("|")
            out.append(unescape(label or url))
            i = end + 1
            continue
        can_open = _boundary(before) and bool(after) and not after.isspace()
        if char == "`" and can_open:
            close = next(
                (k for k in range(i + 1, len(line)) if line[k] == "`"
                 and not line[k - 1].isspace() and _boundary(line[k + 1 : k + 2])),
                -1,
            )
            if close > i + 1:
                out.append(unescape(line[i + 1 : close]))
                i = close + 1
                continue
        if char in "*_~":
            can_close = bool(before) and not before.isspace() and _boundary(after)
            opener = next((k for k in range(len(stack) - 1, -1, -1) if stack[k][0] == char), -1)
            if can_close and opener >= 0 and stack[opener][1] + 1 < len(out):
                out[stack[opener][1]] = ""
                del stack[opener:]
                i += 1
                continue
            if can_open:
                stack.append((char, len(out)))
        out.append(unescape(char) if char != "&" else "&")
        if char == "&":
            match = _ENTITY.match(line, i)
            if match is None:
                raise MrkdwnError("bare & (escape it as &amp;)")
            out[-1] = _NAMED[match[1]]
            i = match.end()
            continue
        i += 1
    return "".join(out)


def visible_text(mrkdwn: str) -> str:
    """The text a reader sees: code verbatim, quotes without ``>``, markers and ZWSP dropped."""
    parts: list[str] = []
    pos = 0
    for match in _FENCE.finditer(mrkdwn):
        parts.append(_lines(mrkdwn[pos : match.start()]))
        parts.append(unescape(match[1]))
        pos = match.end()
    parts.append(_lines(mrkdwn[pos:]))
    return "".join(parts).replace(ZWSP, "")


def _lines(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        if line.startswith(">"):
            line = line[1:].removeprefix(" ")
        lines.append(_inline(line))
    return "\n".join(lines)
