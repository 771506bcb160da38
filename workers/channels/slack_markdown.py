"""LLM Markdown -> Slack mrkdwn, healed mid-stream; plus the dialect writer Discord reuses.

Healing is done once, by ``telegram_markdown.to_telegram_html`` (it closes what a cut-off
stream left open and holds back markers that may still turn into markup). Its small HTML
(b, i, s, code, pre, a, blockquote) is read back into styled characters here and written out
in a target dialect, so every dialect heals the same way:

    >>> to_mrkdwn("**Done** & see [docs](https://x.io)")
    '*Done* &amp; see <https://x.io|docs>'

Slack only honours ``*bold*``, ``_italic_``, ``~strike~`` and `` `code` `` at word boundaries,
so a span touching a letter on its outside keeps its text and drops its markers. Literal
marker characters are fenced by zero-width spaces so Slack never pairs them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

from workers.channels.telegram_markdown import to_telegram_html

__all__ = [
    "ZWSP", "Atom", "Dialect", "Line", "mrkdwn_units", "plain_mrkdwn", "read_html", "to_mrkdwn",
    "write",
]

#: zero-width space: invisible, keeps Slack from pairing a literal ``*`` with another one
ZWSP = "\u200b"
_BACKTICK_PAIR = re.compile(r"``(?=`)")
#: inline styles in the order they nest (outermost first when two start together)
STYLES = ("b", "i", "s", "code")
_MARKERS = frozenset("*_~`")


@dataclass(frozen=True)
class Atom:
    """One visible character (or a whole link, its label in ``text``) and its inline styles."""

    text: str
    styles: frozenset[str] = frozenset()
    href: str | None = None


@dataclass
class Line:
    """A line of inline atoms, or a whole code block (``pre`` holds its body)."""

    atoms: list[Atom] = field(default_factory=list)
    quote: bool = False
    pre: str | None = None
    language: str = ""


class _Reader(HTMLParser):
    """Telegram HTML (as ``to_telegram_html`` writes it) -> lines of styled atoms."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[Line] = [Line()]
        self.styles: list[str] = []
        self.href: str | None = None
        self.label: list[str] = []
        self.quote = False
        self.pre: list[str] | None = None
        self.language = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "pre":
            self.pre, self.language = [], ""
        elif tag == "code" and self.pre is not None:
            self.language = (values.get("class") or "").removeprefix("language-")
        elif tag == "a":
            self.href, self.label = values.get("href") or "", []
        elif tag == "blockquote":
            self.quote = True
            self.lines[-1].quote = True
        elif tag in STYLES:
            self.styles.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre" and self.pre is not None:
            self.lines[-1] = Line(pre="".join(self.pre), language=self.language)
            self.pre = None
        elif tag == "a" and self.href is not None:
            self.lines[-1].atoms.append(Atom("".join(self.label), self._styles(), self.href))
            self.href = None
        elif tag == "blockquote":
            self.quote = False
        elif tag in STYLES and tag in self.styles:
            self.styles.remove(tag)

    def handle_data(self, data: str) -> None:
        if self.pre is not None:
            self.pre.append(data)
        elif self.href is not None:
            self.label.append(data)
        else:
            for char in data:
                if char == "\n":
                    self.lines.append(Line(quote=self.quote))
                else:
                    self.lines[-1].atoms.append(Atom(char, self._styles()))

    def _styles(self) -> frozenset[str]:
        return frozenset(self.styles)


def read_html(html: str) -> list[Line]:
    """The lines of a ``to_telegram_html`` rendering, as styled atoms."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.lines


@dataclass(frozen=True)
class Dialect:
    """How one platform writes each construct."""

    #: style -> (opening marker, closing marker)
    markers: dict[str, tuple[str, str]]
    text: Callable[[str], str]
    code: Callable[[str], str]
    link: Callable[[str, str], str]
    pre: Callable[[str, str], str]
    #: code spans too must sit at word boundaries (Slack) or only emphasis must (CommonMark)
    code_needs_boundary: bool = True
    #: prefix of a quoted line
    quote: str = "> "
    #: the first character of a line, when it would start a block construct
    line_start: Callable[[str], str] = lambda text: text


def _outside_ok(atom: Atom | None) -> bool:
    """Whether a marker may sit next to ``atom`` on the span's outside (word boundary)."""
    if atom is None or atom.href is not None:
        return True
    char = atom.text
    return char.isspace() or (char.isascii() and not char.isalnum() and char not in _MARKERS)


def _spans(atoms: list[Atom], dialect: Dialect) -> list[tuple[int, int, str]]:
    """Properly nested (start, end, style) spans a dialect can mark, trimmed of whitespace."""
    spans: list[tuple[int, int, str]] = []
    for style in STYLES:
        i = 0
        while i < len(atoms):
            if style not in atoms[i].styles:
                i += 1
                continue
            j = i
            while j < len(atoms) and style in atoms[j].styles:
                j += 1
            start, end = i, j
            while start < end and atoms[start].text.isspace() and atoms[start].href is None:
                start += 1
            while end > start and atoms[end - 1].text.isspace() and atoms[end - 1].href is None:
                end -= 1
            i = j
            if start == end:
                continue
            if style == "code":
                body = "".join(a.text for a in atoms[start:end])
                if "`" in body or any(a.href is not None for a in atoms[start:end]):
                    continue
                if not dialect.code_needs_boundary:
                    spans.append((start, end, style))
                    continue
            before = atoms[start - 1] if start else None
            after = atoms[end] if end < len(atoms) else None
            if _outside_ok(before) and _outside_ok(after):
                spans.append((start, end, style))
    return _nested(spans)


def _nested(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Drop spans that cross a kept one (or reach into code) until the rest nest properly."""
    kept: list[tuple[int, int, str]] = []
    for span in sorted(spans, key=lambda s: (s[0], -s[1], STYLES.index(s[2]))):
        start, end, style = span
        if all(
            end <= a or b <= start or (a <= start and end <= b and other != "code")
            or (start <= a and b <= end and style != "code")
            for a, b, other in kept
        ):
            kept.append(span)
    return kept


def _write_line(atoms: list[Atom], dialect: Dialect) -> str:
    spans = _spans(atoms, dialect)
    opens: dict[int, list[tuple[int, int, str]]] = {}
    closes: dict[int, list[tuple[int, int, str]]] = {}
    for span in spans:
        opens.setdefault(span[0], []).append(span)
        closes.setdefault(span[1], []).append(span)
    in_code = [False] * len(atoms)
    for start, end, style in spans:
        if style == "code":
            in_code[start:end] = [True] * (end - start)
    out: list[str] = []
    for i in range(len(atoms) + 1):
        for span in sorted(closes.get(i, []), key=lambda s: (-s[0], -STYLES.index(s[2]))):
            out.append(dialect.markers[span[2]][1])
        if i == len(atoms):
            break
        for span in sorted(opens.get(i, []), key=lambda s: (-s[1], STYLES.index(s[2]))):
            out.append(dialect.markers[span[2]][0])
        atom = atoms[i]
        if atom.href is not None:
            out.append(dialect.link(atom.href, atom.text))
        elif in_code[i]:
            out.append(dialect.code(atom.text))
        else:
            out.append(dialect.text(atom.text))
    return dialect.line_start("".join(out))


def write(lines: list[Line], dialect: Dialect) -> str:
    """Lines of styled atoms in ``dialect``."""
    out: list[str] = []
    for line in lines:
        if line.pre is not None:
            out.append(dialect.pre(line.pre, line.language))
            continue
        text = _write_line(line.atoms, dialect)
        if line.quote:
            text = f"{dialect.quote}{text}" if text else dialect.quote.rstrip()
        out.append(text)
    return "\n".join(out)


# --- Slack mrkdwn ---------------------------------------------------------------------------


def escape(text: str) -> str:
    """The three characters Slack wants escaped in any text field."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_text(char: str) -> str:
    return f"{ZWSP}{char}{ZWSP}" if char in _MARKERS else escape(char)


def _slack_link(href: str, label: str) -> str:
    url = escape(href.replace("|", "%7C"))
    return f"<{url}|{escape(label)}>" if label and label != href else f"<{url}>"


def _slack_pre(body: str, language: str) -> str:
    # no run of three backticks may stay inside the block (it would close it): a zero-width
    # space after every second backtick of a run
    return "```\n" + _BACKTICK_PAIR.sub("``" + ZWSP, escape(body)) + "\n```"


SLACK = Dialect(
    markers={"b": ("*", "*"), "i": ("_", "_"), "s": ("~", "~"), "code": ("`", "`")},
    text=_slack_text,
    code=escape,
    link=_slack_link,
    pre=_slack_pre,
)


def to_mrkdwn(markdown: str, final: bool = False) -> str:
    """Render LLM Markdown (possibly cut off mid-stream) as Slack mrkdwn; pure and total.

    ``final``: nothing more will be appended, so nothing is held back. The result may be empty
    or invisible (e.g. for ``"**"``): the caller must not send it.
    """
    return write(read_html(to_telegram_html(markdown, final=final)), SLACK)


def plain_mrkdwn(text: str) -> str:
    """``text`` shown exactly as written: escaped, and no character read as a marker."""
    return "".join(_slack_text(c) for c in text)


#: extra characters Slack's text field may need per source character (escapes, fences)
_SLACK_EXTRA = {"&": 4, "<": 3, ">": 3, **dict.fromkeys(_MARKERS, 2)}


def mrkdwn_units(text: str) -> int:
    """An upper bound of the rendered length in characters (what Slack counts), additive so
    the splitter can search it."""
    return len(text) + sum(_SLACK_EXTRA.get(c, 0) for c in text)
