"""What a channel is, as the producer sees it: its name, what its chat ids look like, how
often a stream in a chat may be edited, and its static capabilities and limits. No
credentials and no I/O: the worker's clients (``workers.channels``) talk to the platform."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from tokenrelay.accounts import lookup
from tokenrelay.config import Settings

#: how a segment's text is formatted: plain, Markdown rendered for the platform, or the
#: platform's own markup passed through as written
Format = Literal["text", "markdown", "html"]
FORMATS: tuple[str, ...] = ("text", "markdown", "html")


class UnknownChannel(ValueError):
    """The producer named a channel tokenrelay has no client for."""


def chat_id_text(channel: str, chat_id: object) -> str:
    """A chat id given as int or str, as a stripped string; ValueError for anything else."""
    if isinstance(chat_id, bool) or not isinstance(chat_id, (int, str)):
        raise ValueError(f"{channel} chat_id must be an int or str, not {type(chat_id).__name__}")
    return str(chat_id).strip()


def pattern_chat_id(
    channel: str, chat_id: object, pattern: re.Pattern[str], expected: str, upper: bool = False
) -> str:
    """The chat id as a stripped string (upper-cased if ``upper``) when it matches
    ``pattern`` in full; ValueError saying it should be ``expected`` otherwise."""
    text = chat_id_text(channel, chat_id)
    text = text.upper() if upper else text
    if not pattern.fullmatch(text):
        raise ValueError(f"invalid {channel} chat_id {chat_id!r}: {expected}")
    return text


def printable_chat_id(channel: str, chat_id: object) -> str:
    """Any non-empty chat name of up to 200 printable characters (console, webhook rooms)."""
    text = chat_id_text(channel, chat_id)
    if not text or len(text) > 200 or any(ord(c) < 32 for c in text):
        raise ValueError(f"invalid {channel} chat_id {chat_id!r}: 1-200 printable characters")
    return text


class ChannelSpec:
    """One channel (platform): the facts a producer needs, and the account settings a
    worker's client is built from. A platform's spec is its class attributes."""

    #: the name producers pass as ``channel=``
    name: ClassVar[str] = ""
    #: messages are edited in place as the text grows; False: whole messages at tool-call
    #: boundaries and at stop
    can_edit: ClassVar[bool] = True
    #: the longest message by default (a per-account setting may lower it), in ``unit``
    max_units: ClassVar[int] = 4096
    #: what ``max_units`` counts, as the platform counts it
    unit: ClassVar[str] = "characters"
    #: what ``native=True`` streams through on this channel ("" when it has nothing native)
    native: ClassVar[str] = ""
    #: what a chat id looks like (matched in full; None: any printable name of 1-200
    #: characters), how to say what is expected, and whether ids are upper-cased first
    chat_id_pattern: ClassVar[re.Pattern[str] | None] = None
    chat_id_expected: ClassVar[str] = ""
    chat_id_upper: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def normalize_chat_id(self, chat_id: object) -> str:
        """The chat id as a string, or ValueError with a clear message."""
        if self.chat_id_pattern is None:
            return printable_chat_id(self.name, chat_id)
        return pattern_chat_id(
            self.name, chat_id, self.chat_id_pattern, self.chat_id_expected, self.chat_id_upper
        )

    def interval_for(self, chat_id: str, default: float) -> float:
        """Seconds between edits of one stream in this chat (platforms may slow some chats)."""
        return default

    def setting(self, account: str, key: str, default: object = None) -> str:
        """The account's ``key`` setting (``tokenrelay.accounts.lookup``), else ``default``
        as text; ConfigError when it is nowhere and has no default."""
        return lookup(self.name, account, key, default=None if default is None else str(default))
