"""Telegram as the producer sees it: integer chat ids (negative for groups) or @channelname."""

from __future__ import annotations

import re

from tokenrelay.specs.base import ChannelSpec

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
    chat_id_pattern = CHAT_ID
    chat_id_expected = "an integer or @channelname"
    max_units = MAX_UNITS
    unit = "UTF-16 code units after entity parsing"
    native = "sendMessageDraft in private chats"

    def interval_for(self, chat_id: str, default: float) -> float:
        if is_group(chat_id):
            return max(default, self.settings.telegram_group_interval)
        return default
