"""Telegram as the producer sees it: integer chat ids (negative for groups) or @channelname."""

from __future__ import annotations

import re

from tokenrelay.specs.base import ChannelSpec, pattern_chat_id

#: Telegram's limit for one message's text, in UTF-16 code units after entity parsing
MAX_UNITS = 4096
#: a chat id: a (possibly negative) integer, or a public @channelusername
CHAT_ID = re.compile(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}")


def is_group(chat_id: str) -> bool:
    """Group and channel chats have negative ids (or are addressed by @username)."""
    return chat_id.startswith(("-", "@"))


class TelegramSpec(ChannelSpec):
    """Telegram (Bot API): send + edit; drafts natively in private chats."""

    name = "telegram"
    max_units = MAX_UNITS
    unit = "UTF-16 code units after entity parsing"
    native = "sendMessageDraft in private chats"

    def normalize_chat_id(self, chat_id: object) -> str:
        return pattern_chat_id(self.name, chat_id, CHAT_ID, "an integer or @channelname")

    def interval_for(self, chat_id: str, default: float) -> float:
        if is_group(chat_id):
            return max(default, self.settings.telegram_group_interval)
        return default
