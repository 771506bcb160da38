"""LLM Markdown -> Feishu card markdown (the ``markdown`` element of a CardKit card).

Card markdown is close to what LLMs write (bold, italics, strike, links, lists, code blocks),
so the text passes through, except:

* ``&`` and ``<`` outside code fences become ``&amp;`` and ``&lt;``: card markdown reads
  HTML-like tags (``<at id=all></at>`` mentions everybody, ``<font>``…), which a model's text
  must never trigger;
* a code fence left open (mid-stream, or by a split) is closed, so the code renders as code
  and the text after it never turns into code.

    >>> to_card_markdown("a <at id=all></at> & b")
    'a &lt;at id=all&gt;&lt;/at&gt; &amp; b'
    >>> to_card_markdown("```py\\nx = 1")
    '```py\\nx = 1\\n```'
"""

from __future__ import annotations

import json
import re

__all__ = ["card_bytes", "to_card_markdown"]

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


def to_card_markdown(text: str, final: bool = False) -> str:
    """Card markdown showing ``text``; pure and total. ``final`` changes nothing today (the
    card shows half-written emphasis as written) but keeps the renderers' signature."""
    out: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        if fence is None:
            match = _FENCE.match(line)
            if match and not (match.group(1)[0] == "`" and "`" in line[match.end():]):
                fence = match.group(1)
            else:
                line = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                line = _quote_marker(line)
        elif _closes(line, fence):
            fence = None
        out.append(line)
    if fence is not None:
        out.append(fence)
    return "\n".join(out)


def _quote_marker(line: str) -> str:
    """Keep a leading ``>`` quote marker a quote: it was escaped with the rest."""
    stripped = line.lstrip(" ")
    indent = line[: len(line) - len(stripped)]
    while stripped.startswith("&gt;"):
        indent += ">"
        stripped = stripped[4:]
    return indent + stripped


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= len(fence) and stripped == fence[0] * len(stripped)


def card_bytes(text: str) -> int:
    """Bytes ``text`` takes in a card's JSON once rendered: the unit of the 30 KB limit."""
    return len(json.dumps(to_card_markdown(text), ensure_ascii=False).encode()) - 2
