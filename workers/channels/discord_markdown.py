"""LLM Markdown -> Discord markdown, healed mid-stream (the dialect writer of slack_markdown).

Discord reads Markdown itself, so rendering mostly writes the text back: healed (no dangling
``**`` while the reply grows), headings as bold, literal marker characters escaped with a
backslash, code fences that a body line could close broken by a zero-width space.

    >>> to_discord("**Done**: 2*3 [docs](https://x.io)")
    '**Done**: 2\\\\*3 [docs](https://x.io)'
"""

from __future__ import annotations

from workers.channels.slack_markdown import ZWSP, Dialect, read_html, write
from workers.channels.telegram_markdown import to_telegram_html

__all__ = ["discord_units", "escape", "to_discord"]

#: characters Discord's markdown may read as markup anywhere in a line
_SPECIAL = frozenset("\\*_~`|[]()<>")
#: characters that start a block construct at the start of a line
_LINE_START = frozenset("#->+")


def escape(text: str) -> str:
    """``text`` with every markdown character backslash-escaped (shown as written)."""
    return "".join(f"\\{c}" if c in _SPECIAL else c for c in text)


def _line_start(line: str) -> str:
    stripped = line.lstrip(" ")
    if stripped[:1] in _LINE_START:
        cut = len(line) - len(stripped)
        return f"{line[:cut]}\\{stripped}"
    return line


def _link(href: str, label: str) -> str:
    return f"[{escape(label)}]({href})"


def _pre(body: str, language: str) -> str:
    guarded = "\n".join(
        f"{ZWSP}{line}" if line.strip().startswith("```") else line for line in body.split("\n")
    )
    return f"```{language}\n{guarded}\n```"


DISCORD = Dialect(
    markers={"b": ("**", "**"), "i": ("_", "_"), "s": ("~~", "~~"), "code": ("`", "`")},
    text=escape,
    code=lambda text: text,
    link=_link,
    pre=_pre,
    code_needs_boundary=False,
    line_start=_line_start,
)


def to_discord(markdown: str, final: bool = False) -> str:
    """Render LLM Markdown (possibly cut off mid-stream) as Discord markdown; pure and total.

    The result may be invisible (e.g. for ``"**"``): the caller must not send it.
    """
    return write(read_html(to_telegram_html(markdown, final=final)), DISCORD)


def discord_units(text: str) -> int:
    """An upper bound of the rendered length in characters (escapes, bold headings), additive
    so the splitter can search it."""
    # "#" may become "**…**"; a backtick may open a fence the renderer has to close
    return len(text) + sum(2 if c in "#`" else c in _SPECIAL or c in _LINE_START for c in text)
