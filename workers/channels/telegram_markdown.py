"""LLM-flavoured Markdown -> Telegram Bot API HTML (``parse_mode="HTML"``), healed mid-stream.

A reply is edited in place while it grows, so the Markdown may stop anywhere: inside a code
fence, after a lone ``**``, halfway through ``[text](ht``. Every output is valid Telegram HTML
(tags b, i, s, code, pre, a, blockquote only; balanced and properly nested), never shows more
UTF-16 units than the Markdown had, and changes as little as possible as text is appended.

    >>> to_telegram_html("**Done**: see `main.py`")
    '<b>Done</b>: see <code>main.py</code>'
    >>> to_telegram_html("```py\\nprint(1")
    '<pre><code class="language-py">print(1</code></pre>'

Blocks are line based: code fences, ``>`` quotes (consecutive lines form one blockquote),
``#`` headings (bold), ``-``/``*``/``+`` bullets (shown as ``•``); numbered lists, ``---``
rules, tables and everything else stay literal text. Inline markup never crosses a line.

Healing a cut-off stream ("the last line" is the one after the final newline, the only one
the stream may still be writing):

* On a finished line an unclosed opener is literal text, as in CommonMark.
* On the last line, an unclosed ``**``, ``__``, ``*``, ``_``, ``~~`` or backtick span that
  already has content is closed, so the content shows formatted.
* A marker that ends the input and may still turn into markup renders as nothing until the
  next characters decide: a dangling ``**``/``*``/``_``/``~``/backtick opener, the first
  half of a closing ``**``, a lone ``-``/``+``/``#`` at a line start, a trailing backslash,
  a code fence's opening line (its info string may be incomplete), and an open fence's last
  line while it is empty or could become the closing fence.
* An open code fence is closed.
* ``[text`` and ``[text]`` are literal until ``](`` arrives; then ``[text](partial-url``
  shows just ``text`` while the URL could still become an allowed link.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import cast

__all__ = [
    "BULLET",
    "LINK_SCHEMES",
    "MAX_OPEN_DELIMITERS",
    "open_fence",
    "to_telegram_html",
    "visible_text",
]

#: emphasis openers that may wait for a closer at once on one line; more are literal text
MAX_OPEN_DELIMITERS = 16
#: lower-case URL prefixes that become links; any other target leaves the Markdown literal
LINK_SCHEMES = ("http://", "https://", "tg://", "mailto:")
#: shown instead of a "-", "*" or "+" bullet marker (one UTF-16 unit for one)
BULLET = "•"

_SCHEME_CHARS = max(len(s) for s in LINK_SCHEMES)
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_QUOTE = re.compile(r"(?: {0,3}> ?)+")
_HEADING = re.compile(r" {0,3}#{1,6}(?:[ \t]+|$)")
_BULLET_ITEM = re.compile(r"([ \t]*)[-*+]([ \t]+)")
_LONE_MARKER = re.compile(r"[ \t]*[-+]")
_RULE = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*")
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.-]{1,40}")
_SPECIAL = re.compile(r"[\\`*_~\[]")
_RUNS = {c: re.compile(re.escape(c) + "+") for c in "`*_~"}
_BRACKETS = re.compile(r"\\[!-/:-@\[-`{-~]|[\[\]()]")
_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_TAG = re.compile(r"<[^>]*>")
_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]+)|#[xX]([0-9a-fA-F]+));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def to_telegram_html(markdown: str, final: bool = False) -> str:
    """Render LLM-flavoured Markdown (possibly cut off mid-stream) as Telegram Bot API HTML.

    ``final``: the text is complete (the stream stopped, or this part of it was split off), so
    nothing is held back for what may follow: a trailing ``*`` shows as ``*``.

    Pure and total: never raises, linear in the input. The result may be empty (e.g. for
    ``"**"``); the caller must not send an empty message.
    """
    lines = markdown.split("\n")
    last = len(lines) - 1
    growing = last if not final else -1  # the one line the stream may still extend
    blocks: list[str] = []
    i = 0
    while i <= last:
        line = lines[i]
        fence = _fence_opener(line)
        if fence is not None:
            if i == growing:  # the info string may still be arriving
                blocks.append("")
                break
            marker, info = fence
            body: list[str] = []
            i += 1
            closed = False
            while i <= last:
                closed = _closes_fence(lines[i], marker)
                i += 1
                if closed:
                    break
                body.append(lines[i - 1])
            if not final and not closed and body and _may_close_fence(body[-1], marker):
                body.pop()  # may become the closing fence; its newline is held back with it
            blocks.append(_render_pre("\n".join(body), info))
        elif _QUOTE.match(line):
            quoted: list[str] = []
            while i <= last and (mark := _QUOTE.match(lines[i])):
                quoted.append(_render_line(lines[i][mark.end() :], i == growing))
                i += 1
            inner = "\n".join(quoted)
            blocks.append(f"<blockquote>{inner}</blockquote>" if inner else "")
        else:
            blocks.append(_render_line(line, i == growing))
            i += 1
    return "\n".join(blocks)


def open_fence(markdown: str) -> str:
    """The opening line (with its newline) of the code fence ``markdown`` ends inside, or "".

    When a long reply is split inside a code block, the next message starts with this line so
    its code still renders as code:

    >>> open_fence("Look:\\n```py\\nx = 1\\n")
    '```py\\n'
    >>> open_fence("```py\\nx = 1\\n```\\n")
    ''
    """
    opener: tuple[str, str] | None = None
    line_of_opener = ""
    for line in markdown.split("\n"):
        if opener is None:
            opener = _fence_opener(line)
            line_of_opener = line
        elif _closes_fence(line, opener[0]):
            opener = None
    return f"{line_of_opener.strip()}\n" if opener is not None else ""


def visible_text(html: str) -> str:
    """What Telegram shows for ``html``: tags stripped, the entities it knows unescaped.

    >>> visible_text('<b>a &lt; b</b> &amp; <a href="https://x">c</a>')
    'a < b & c'
    """
    return _ENTITY.sub(_unescape, _TAG.sub("", html))


def _unescape(match: re.Match[str]) -> str:
    name, decimal, hexadecimal = match.groups()
    if name:
        return _NAMED[name]
    try:
        return chr(int(decimal) if decimal else int(hexadecimal, 16))
    except (ValueError, OverflowError):
        return match.group(0)


def _escape(text: str, quote: bool = False) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace('"', "&quot;") if quote else text


# --- blocks -----------------------------------------------------------------------------


def _fence_opener(line: str) -> tuple[str, str] | None:
    """``(marker, info)`` if ``line`` opens a code fence."""
    match = _FENCE.fullmatch(line)
    if match is None:
        return None
    marker, info = match.groups()
    if marker[0] == "`" and "`" in info:  # "```x```" is an inline code span
        return None
    return marker, info.strip()


def _closes_fence(line: str, marker: str) -> bool:
    stripped = line.strip(" \t\r")
    indent = len(line) - len(line.lstrip(" "))
    return indent <= 3 and len(stripped) >= len(marker) and stripped == marker[0] * len(stripped)


def _may_close_fence(line: str, marker: str) -> bool:
    """Whether an open fence's unfinished last line could still become its closing fence."""
    stripped = line.strip(" \t")
    return stripped == marker[0] * len(stripped)


def _render_pre(body: str, info: str) -> str:
    if not body:
        return ""
    words = info.split()
    if words and _LANGUAGE.fullmatch(words[0]):
        return f'<pre><code class="language-{words[0]}">{_escape(body)}</code></pre>'
    return f"<pre>{_escape(body)}</pre>"


def _render_line(line: str, open_end: bool) -> str:
    """One line outside code fences; ``open_end`` if the stream may still extend it."""
    rule = _RULE.fullmatch(line)
    # On the last line "***" may still be the start of "***bold***".
    if rule and (not open_end or rule.group(1) == "-" or " " in line.strip()):
        return _escape(line)
    if heading := _HEADING.match(line):
        return _render([_Element("b", _parse_inline(line[heading.end() :], open_end))])
    if item := _BULLET_ITEM.match(line):
        rest = _render(_parse_inline(line[item.end() :], open_end))
        return item.group(1) + BULLET + item.group(2) + rest
    if open_end and _LONE_MARKER.fullmatch(line):
        return line[:-1]  # the marker may still become a bullet
    return _render(_parse_inline(line, open_end))


# --- inline -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Delim:
    """An emphasis opener waiting for its closer; literal text if it never gets one."""

    char: str
    count: int


@dataclass(slots=True)
class _Element:
    tag: str
    children: list[_Node]
    href: str = ""


_Node = str | _Delim | _Element


def _parse_inline(text: str, open_end: bool) -> list[_Node]:
    return _InlineParser(text, open_end).parse()


def _render(nodes: list[_Node], active: frozenset[str] = frozenset()) -> str:
    """Nodes -> HTML; an element inside one with the same tag adds no second tag."""
    parts: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            parts.append(_escape(node))
        elif isinstance(node, _Delim):
            parts.append(node.char * node.count)
        else:
            inner = _render(node.children, active | {node.tag})
            if not inner or node.tag in active:
                parts.append(inner)
            elif node.tag == "a":
                parts.append(f'<a href="{_escape(node.href, quote=True)}">{inner}</a>')
            else:
                parts.append(f"<{node.tag}>{inner}</{node.tag}>")
    return "".join(parts)


def _is_punct(char: str) -> bool:
    """Unicode punctuation or symbol, as CommonMark counts it for flanking."""
    return unicodedata.category(char)[0] in "PS"


def _flanks(inner: str, outer: str) -> bool:
    """CommonMark flanking: a run between ``outer`` and ``inner`` touches the ``inner`` side.

    ``_flanks(after, before)`` is left-flanking (may open), ``_flanks(before, after)``
    right-flanking (may close); "" stands for the start or end of the line.
    """
    if not inner or inner.isspace():
        return False
    return not _is_punct(inner) or not outer or outer.isspace() or _is_punct(outer)


def _is_word(char: str, delim: str) -> bool:
    """Whether ``char`` next to ``delim`` makes it intraword (snake_case, 2*3*4): inert.

    ``_`` follows CommonMark (any letter or digit); ``*`` and ``~`` only ASCII ones, so
    ``**粗体**中文`` still works.
    """
    if not char:
        return False
    return char.isalnum() if delim == "_" else char.isascii() and char.isalnum()


class _InlineParser:
    """One line -> nodes. Emphasis openers wait on a stack for closers, CommonMark-style."""

    def __init__(self, text: str, open_end: bool, links: bool = True) -> None:
        self.text = text
        self.open_end = open_end
        self.links = links
        self.out: list[_Node] = []
        self.stack: list[int] = []  # indices in out of the _Delim openers still waiting
        self._tick_runs: dict[int, list[int]] | None = None
        self._pairs: dict[int, int] | None = None
        self._spaces: list[int] | None = None

    def parse(self) -> list[_Node]:
        text, pos = self.text, 0
        while pos < len(text):
            match = _SPECIAL.search(text, pos)
            if match is None:
                self.out.append(text[pos:])
                break
            start = match.start()
            if start > pos:
                self.out.append(text[pos:start])
            char = text[start]
            if char == "\\":
                pos = self._escape(start)
            elif char == "`":
                pos = self._code(start)
            elif char == "[":
                pos = self._link(start)
            else:
                pos = self._delimiter(start)
        self._finish()
        return self.out

    def _escape(self, start: int) -> int:
        following = start + 1
        if following < len(self.text) and self.text[following] in _ASCII_PUNCT:
            self.out.append(self.text[following])
            return following + 1
        if following == len(self.text) and self.open_end:
            return following  # may still escape the next character
        self.out.append("\\")
        return following

    def _code(self, start: int) -> int:
        text = self.text
        end = _run_end(text, start)
        width = end - start
        if self._tick_runs is None:
            self._tick_runs = {}
            for run in _RUNS["`"].finditer(text):
                self._tick_runs.setdefault(run.end() - run.start(), []).append(run.start())
        starts = self._tick_runs.get(width, [])
        k = bisect_right(starts, start)
        if k < len(starts):
            close = starts[k]
            self.out.append(_Element("code", [text[end:close]]))
            return close + width
        if self.open_end:
            if end < len(text):
                self.out.append(_Element("code", [text[end:]]))
            return len(text)
        self.out.append(text[start:end])
        return end

    def _link(self, start: int) -> int:
        text = self.text
        pairs = self._bracket_pairs() if self.links else {}
        close = pairs.get(start)
        if close is not None and text.startswith("(", close + 1):
            paren = close + 1
            end = pairs.get(paren)
            if end is not None:
                url = text[paren + 1 : end]
                if url and not self._has_space(paren + 1, end) and _allowed_url(url):
                    label = _InlineParser(text[start + 1 : close], False, links=False).parse()
                    self.out.append(_Element("a", label or [url], href=url))
                    return end + 1
            elif (
                self.open_end
                and not self._has_space(paren + 1, len(text))
                and _may_become_url(text[paren + 1 : paren + 1 + _SCHEME_CHARS])
            ):
                self.out.extend(_InlineParser(text[start + 1 : close], False, links=False).parse())
                return len(text)
        self.out.append("[")
        return start + 1

    def _bracket_pairs(self) -> dict[int, int]:
        """Opening position -> matching closing position, for [] and () (escapes skipped)."""
        if self._pairs is None:
            self._pairs = {}
            waiting: dict[str, list[int]] = {"[": [], "(": []}
            for match in _BRACKETS.finditer(self.text):
                token = match.group()
                if token in waiting:
                    waiting[token].append(match.start())
                elif token in "])":
                    openers = waiting["[" if token == "]" else "("]
                    if openers:
                        self._pairs[openers.pop()] = match.start()
        return self._pairs

    def _has_space(self, start: int, end: int) -> bool:
        if self._spaces is None:
            self._spaces = list(accumulate((c.isspace() for c in self.text), initial=0))
        return self._spaces[end] > self._spaces[start]

    def _delimiter(self, start: int) -> int:
        text, out = self.text, self.out
        char = text[start]
        end = _run_end(text, start)
        count = end - start
        at_end = end == len(text) and self.open_end
        if count > 3 or (char == "~" and count != 2):
            if at_end and char == "~" and count == 1:
                return end  # may become "~~"
            out.append(text[start:end])
            return end
        before = text[start - 1] if start else ""
        after = text[end] if end < len(text) else ""
        if _flanks(before, after) and not _is_word(after, char):
            opener = self._find_opener(char)
            if at_end and opener is not None and self._delim(opener).count > count:
                return end  # the closer is still arriving
            count = self._close(char, count)
            if not count:
                return end
        if at_end:
            if not _is_word(before, char):
                return end  # may still open
            out.append(char * count)
        elif (
            _flanks(after, before)
            and not _is_word(before, char)
            and len(self.stack) < MAX_OPEN_DELIMITERS
        ):
            out.append(_Delim(char, count))
            self.stack.append(len(out) - 1)
        else:
            out.append(char * count)
        return end

    def _delim(self, index: int) -> _Delim:
        """The opener at ``index``; the stack only ever holds indices of openers."""
        return cast(_Delim, self.out[index])

    def _find_opener(self, char: str) -> int | None:
        for index in reversed(self.stack):
            if self._delim(index).char == char:
                return index
        return None

    def _close(self, char: str, count: int) -> int:
        """Close waiting openers of ``char`` with a run of ``count``; returns what is left."""
        out = self.out
        while count and (index := self._find_opener(char)) is not None:
            while self.stack[-1] != index:
                self.stack.pop()  # openers crossed by this closer stay literal
            opener = self._delim(index)
            use = 2 if opener.count >= 2 and count >= 2 else 1
            tag = "s" if char == "~" else "b" if use == 2 else "i"
            children = out[index + 1 :]
            del out[index + 1 :]
            out.append(_Element(tag, children))
            opener.count -= use
            count -= use
            if not opener.count:
                del out[index]
                self.stack.pop()
        return count

    def _finish(self) -> None:
        """Heal: on an open end, close every waiting opener that has content."""
        if not self.open_end:
            return
        while self.stack:
            index = self.stack.pop()
            opener = self._delim(index)
            children = self.out[index + 1 :]
            del self.out[index:]
            if not children:
                continue
            if opener.char == "~":
                self.out.append(_Element("s", children))
            elif opener.count == 3:
                self.out.append(_Element("b", [_Element("i", children)]))
            else:
                self.out.append(_Element("b" if opener.count == 2 else "i", children))


def _run_end(text: str, start: int) -> int:
    """End of the run of ``text[start]`` characters (backticks, ``*``, ``_`` or ``~``)."""
    match = _RUNS[text[start]].match(text, start)
    return match.end() if match else start + 1


def _allowed_url(url: str) -> bool:
    return url.lower().startswith(LINK_SCHEMES)


def _may_become_url(head: str) -> bool:
    """Whether a URL that starts with ``head`` (cut to the longest scheme) may be allowed."""
    head = head.lower()
    return any(head.startswith(s) or s.startswith(head) for s in LINK_SCHEMES)
