"""Telegram's text rules: UTF-16 length and the three markup dialects (HTML, MarkdownV2, Markdown).

Pure functions, no I/O: ``visible_text`` turns marked-up text into what a chat shows, or raises
``EntityParseError`` with the message Telegram gives for markup it refuses.
"""

from __future__ import annotations

import re

__all__ = ["PARSE_MODES", "TRIMMED", "EntityParseError", "utf16_len", "visible_text"]

#: characters Telegram trims from both ends of a message's visible text
TRIMMED = " \t\n\r\f\v"
#: what tdlib's markup parsers treat as white space
_SPACE = " \t\n\r\f\v\0"


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit of Telegram's text limits."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class EntityParseError(ValueError):
    """Markup Telegram refuses; the message is what follows "can't parse entities: "."""


class _Parser:
    """Shared state of the markup parsers: source text, visible output, error helper."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.out: list[str] = []

    def parse(self) -> str:
        """The visible text; raises EntityParseError where Telegram would refuse the markup."""
        raise NotImplementedError

    def offset(self, index: int) -> int:
        """The UTF-8 byte offset of ``self.text[index]``, the unit of Telegram's error messages."""
        return len(self.text[:index].encode("utf-8", "surrogatepass"))


_HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "code",
        "pre",
        "a",
        "blockquote",
        "tg-spoiler",
        "span",
    }
)
_HTML_PLAIN = re.compile(r"[^<&]+")
_HTML_ENTITY = re.compile(r"&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|([A-Za-z]+));")
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_NAME_TOKEN = re.compile(r"[A-Za-z0-9.-]*")


def _html_entity(match: re.Match[str]) -> str | None:
    """The character an ``&…;`` reference stands for, or None if Telegram doesn't know it."""
    if match[3] is not None:
        return _HTML_NAMED.get(match[3])
    code = int(match[1]) if match[1] is not None else int(match[2], 16)
    if 0 < code < 0x110000 and not 0xD800 <= code <= 0xDFFF:
        return chr(code)
    return None


class _HtmlParser(_Parser):
    """Telegram's HTML: a fixed tag set, four named entities plus numeric references.

    Stricter than Telegram in one way, on purpose: a ``&`` in text that doesn't start a known
    entity is an error (Telegram keeps it literally), so unescaped user text is caught.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.open: list[str] = []

    def parse(self) -> str:
        text, i = self.text, 0
        while i < len(text):
            if plain := _HTML_PLAIN.match(text, i):
                self.out.append(plain.group())
                i = plain.end()
            elif text[i] == "&":
                i = self._entity(i)
            elif text.startswith("</", i):
                i = self._end_tag(i)
            else:
                i = self._start_tag(i)
        if self.open:
            tag = self.open[-1]
            raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{tag}"')
        return "".join(self.out)

    def _entity(self, i: int) -> int:
        match = _HTML_ENTITY.match(self.text, i)
        char = _html_entity(match) if match else None
        if match is None or char is None:
            at = self.offset(i)
            raise EntityParseError(f'Character "&" at byte offset {at} must be escaped as "&amp;"')
        self.out.append(char)
        return match.end()

    def _name_end(self, i: int) -> int:
        while i < len(self.text) and self.text[i] not in _SPACE and self.text[i] != ">":
            i += 1
        return i

    def _start_tag(self, begin: int) -> int:
        text = self.text
        end = self._name_end(begin + 1)
        if end >= len(text):
            raise EntityParseError(f"Unclosed start tag at byte offset {self.offset(begin)}")
        tag = text[begin + 1 : end].lower()
        at = self.offset(begin)
        if tag not in _HTML_TAGS:
            raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {at}')
        attributes, end = self._attributes(tag, begin, end)
        if tag == "span" and attributes.get("class") != "tg-spoiler":
            raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {at}')
        self.open.append(tag)
        return end + 1

    def _attributes(self, tag: str, begin: int, i: int) -> tuple[dict[str, str], int]:
        """Read ``name="value"`` pairs up to the tag's ``>``; return them and the ``>`` index."""
        text, n = self.text, len(self.text)
        attributes: dict[str, str] = {}
        unclosed = EntityParseError(f"Unclosed start tag at byte offset {self.offset(begin)}")
        no_equal = EntityParseError(
            f'Expected equal sign in declaration of attribute of the tag "{tag}" '
            f"at byte offset {self.offset(begin)}"
        )
        while True:
            while i < n and text[i] in _SPACE:
                i += 1
            if i >= n:
                raise unclosed
            if text[i] == ">":
                return attributes, i
            start = i
            while i < n and text[i] not in _SPACE and text[i] not in "=>":
                i += 1
            name = text[start:i].lower()
            while i < n and text[i] in _SPACE:
                i += 1
            if name and i < n and text[i] == "=":
                i += 1
                while i < n and text[i] in _SPACE:
                    i += 1
                if i >= n:
                    raise unclosed
                if text[i] in "\"'":
                    close = text.find(text[i], i + 1)
                    if close < 0:
                        raise unclosed
                    # Inside attribute values Telegram keeps unknown "&" literally (URLs have them).
                    value = _HTML_ENTITY.sub(
                        lambda m: _html_entity(m) or m.group(), text[i + 1 : close]
                    )
                    i = close + 1
                else:
                    token = _NAME_TOKEN.match(text, i)
                    assert token is not None  # the pattern matches the empty string
                    value, i = token.group().lower(), token.end()
                    if i < n and text[i] not in _SPACE and text[i] != ">":
                        at = self.offset(token.start())
                        raise EntityParseError(f"Unexpected end of name token at byte offset {at}")
            elif name == "expandable" and tag == "blockquote":
                value = ""
            else:
                raise no_equal
            attributes[name] = value

    def _end_tag(self, begin: int) -> int:
        if not self.open:
            raise EntityParseError(f"Unexpected end tag at byte offset {self.offset(begin)}")
        text = self.text
        end = self._name_end(begin + 2)
        name = text[begin + 2 : end].lower()
        while end < len(text) and text[end] in _SPACE:
            end += 1
        if end >= len(text) or text[end] != ">":
            raise EntityParseError(f"Unclosed end tag at byte offset {self.offset(begin)}")
        expected = self.open[-1]
        if name and name != expected:
            raise EntityParseError(
                f"Unmatched end tag at byte offset {self.offset(begin)}, "
                f'expected "</{expected}>", found "</{name}>"'
            )
        self.open.pop()
        return end + 1


_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
#: the marker that ends each MarkdownV2 entity (named as in Telegram's error messages)
_MDV2_CLOSERS = {
    "Bold": "*",
    "Italic": "_",
    "Underline": "__",
    "Strikethrough": "~",
    "Spoiler": "||",
    "Code": "`",
    "Pre": "```",
    "PreCode": "```",
    "TextUrl": "]",
    "CustomEmoji": "]",
}


class _MarkdownV2Parser(_Parser):
    """Telegram's MarkdownV2: nested entities, every reserved character escaped with ``\\``.

    Covers bold, italic, underline, strikethrough, spoiler, code, pre (with language), links,
    custom emoji and ``>`` / ``**>`` block quotes (with the ``||`` expandable end marker).
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.open: list[tuple[str, int]] = []  # (entity type, index of its opening marker)
        self.quote_line = False

    def parse(self) -> str:
        text, i = self.text, 0
        while i < len(text):
            c = text[i]
            if c == "\\" and i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126:
                self.out.append(text[i + 1])
                i += 2
                continue
            verbatim = bool(self.open) and self.open[-1][0] in ("Code", "Pre", "PreCode")
            if not verbatim and (i == 0 or text[i - 1] == "\n"):
                self.quote_line = text.startswith((">", "**>"), i)
                if self.quote_line:
                    i += 1 if c == ">" else 3
                    continue
            if c not in ("`" if verbatim else _MDV2_RESERVED):
                self.out.append(c)
                i += 1
                continue
            closer = _MDV2_CLOSERS[self.open[-1][0]] if self.open else None
            if self._expandable_end(i, closer):
                i += 2
            elif closer is not None and self._closes(closer, i):
                i = self._close(i + len(closer))
            elif verbatim:
                raise self._reserved(c)
            else:
                i = self._open(i)
        if self.open:
            kind, begin = self.open[-1]
            at = self.offset(begin)
            raise EntityParseError(f"Can't find end of {kind} entity at byte offset {at}")
        return "".join(self.out)

    @staticmethod
    def _reserved(c: str) -> EntityParseError:
        return EntityParseError(
            f"Character '{c}' is reserved and must be escaped with the preceding '\\'"
        )

    def _expandable_end(self, i: int, closer: str | None) -> bool:
        """``||`` closing the last line of a block quote marks it expandable."""
        if not (self.quote_line and closer != "||" and self.text.startswith("||", i)):
            return False
        return i + 2 == len(self.text) or self.text[i + 2] == "\n"

    def _closes(self, closer: str, i: int) -> bool:
        if closer == "_":
            return self.text[i] == "_" and not self.text.startswith("__", i)
        return self.text.startswith(closer, i)

    def _close(self, i: int) -> int:
        kind, _ = self.open.pop()
        if kind not in ("TextUrl", "CustomEmoji"):
            return i
        url = None
        if self.text.startswith("(", i):
            url, i = self._url(i + 1)
        if kind == "CustomEmoji" and not (url or "").startswith("tg://emoji?id="):
            raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
        return i

    def _url(self, start: int) -> tuple[str, int]:
        """Read a link target up to its unescaped ``)``; return it and the index after."""
        text, i, url = self.text, start, []
        while i < len(text) and text[i] != ")":
            if text[i] == "\\" and i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126:
                i += 1
            url.append(text[i])
            i += 1
        if i >= len(text):
            raise EntityParseError(f"Can't find end of a URL at byte offset {self.offset(start)}")
        return "".join(url), i + 1

    def _open(self, i: int) -> int:
        text = self.text
        if text.startswith("```", i):
            return self._open_pre(i)
        for marker, kind in (
            ("__", "Underline"),
            ("_", "Italic"),
            ("*", "Bold"),
            ("~", "Strikethrough"),
            ("||", "Spoiler"),
            ("[", "TextUrl"),
            ("![", "CustomEmoji"),
            ("`", "Code"),
        ):
            if text.startswith(marker, i):
                self.open.append((kind, i))
                return i + len(marker)
        raise self._reserved(text[i])

    def _open_pre(self, begin: int) -> int:
        text = self.text
        i = end = begin + 3
        while end < len(text) and text[end] not in _SPACE and text[end] != "`":
            end += 1
        kind = "Pre"
        if end != i and end < len(text) and text[end] != "`":
            kind, i = "PreCode", end  # the language name is not shown
        if text.startswith(("\r\n", "\n\r"), i):
            i += 2
        elif text[i : i + 1] in ("\n", "\r"):
            i += 1
        self.open.append((kind, begin))
        return i


class _MarkdownParser(_Parser):
    """Telegram's legacy Markdown: ``*bold*``, ``_italic_``, ```code```, pre blocks and links."""

    def parse(self) -> str:
        text, i = self.text, 0
        while i < len(text):
            c = text[i]
            if c == "\\" and text[i + 1 : i + 2] in ("_", "*", "`", "["):
                self.out.append(text[i + 1])
                i += 2
            elif c not in "_*`[":
                self.out.append(c)
                i += 1
            else:
                i = self._entity(i)
        return "".join(self.out)

    def _entity(self, begin: int) -> int:
        text, c = self.text, self.text[begin]
        end_char = "]" if c == "[" else c
        i = begin + 1
        is_pre = c == "`" and text.startswith("``", i)
        if is_pre:
            i = end = i + 2
            while end < len(text) and text[end] not in _SPACE and text[end] != "`":
                end += 1
            if end != i and end < len(text) and text[end] != "`":
                i = end  # the language name is not shown
            if text.startswith(("\r\n", "\n\r"), i):
                i += 2
            elif text[i : i + 1] in ("\n", "\r"):
                i += 1
        while i < len(text) and not (
            text[i] == end_char and (not is_pre or text.startswith("``", i + 1))
        ):
            self.out.append(text[i])
            i += 1
        if i >= len(text):
            at = self.offset(begin)
            raise EntityParseError(f"Can't find end of the entity starting at byte offset {at}")
        if c == "[" and text.startswith("(", i + 1):
            close = text.find(")", i + 2)
            i = len(text) if close < 0 else close
        return i + (3 if is_pre else 1)


#: parse_mode values the Bot API accepts (case-insensitively), by their canonical spelling
PARSE_MODES = {"html": "HTML", "markdownv2": "MarkdownV2", "markdown": "Markdown"}
_PARSERS: dict[str, type[_Parser]] = {
    "HTML": _HtmlParser,
    "MarkdownV2": _MarkdownV2Parser,
    "Markdown": _MarkdownParser,
}


def visible_text(text: str, parse_mode: str | None) -> str:
    """What a chat shows for ``text`` in ``parse_mode`` (canonical name or None): markup removed.

    Raises EntityParseError for markup Telegram refuses. The result is not yet trimmed.
    """
    if parse_mode is None:
        return text
    return _PARSERS[parse_mode](text).parse()
