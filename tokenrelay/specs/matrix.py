"""Matrix as the producer sees it: room ids such as ``!abc:example.org``."""

from __future__ import annotations

import re

from tokenrelay.specs.base import ChannelSpec, pattern_chat_id

#: default longest message, in characters (an edit carries the text twice in one event, and
#: Synapse refuses events over 64 KiB of JSON)
MAX_CHARS = 32_000
#: a room id: ``!opaque:server.name``
ROOM_ID = re.compile(r"![^:\s/]+:[^\s/]+")


class MatrixSpec(ChannelSpec):
    """Matrix (client-server API): m.room.message events edited with m.replace."""

    name = "matrix"
    max_units = MAX_CHARS

    def normalize_chat_id(self, chat_id: object) -> str:
        return pattern_chat_id(self.name, chat_id, ROOM_ID, "a room id like !abc:server")
