"""Discord as the producer sees it: channel ids are snowflakes."""

from __future__ import annotations

import re

from tokenrelay.specs.base import ChannelSpec

#: characters of one message's content
MAX_CHARS = 2000
#: a channel id: a snowflake
SNOWFLAKE = re.compile(r"\d{15,21}")


class DiscordSpec(ChannelSpec):
    """Discord (REST API): POST + PATCH channel messages, idempotent sends by nonce."""

    name = "discord"
    chat_id_pattern = SNOWFLAKE
    chat_id_expected = "a channel id (snowflake, 15-21 digits)"
    max_units = MAX_CHARS
