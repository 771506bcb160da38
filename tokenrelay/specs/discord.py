"""Discord as the producer sees it: channel ids are snowflakes."""

from __future__ import annotations

import re

from tokenrelay.specs.base import ChannelSpec, pattern_chat_id

#: characters of one message's content
MAX_CHARS = 2000
#: a channel id: a snowflake
SNOWFLAKE = re.compile(r"\d{15,21}")


class DiscordSpec(ChannelSpec):
    """Discord (REST API): POST + PATCH channel messages, idempotent sends by nonce."""

    name = "discord"
    max_units = MAX_CHARS

    def normalize_chat_id(self, chat_id: object) -> str:
        return pattern_chat_id(
            self.name, chat_id, SNOWFLAKE, "a channel id (snowflake, 15-21 digits)"
        )
