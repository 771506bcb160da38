"""Matrix as the producer sees it: room ids such as ``!abc:example.org``."""

from __future__ import annotations

import re

from tokenrelay.specs.base import ChannelSpec

#: default longest message, in characters (an edit carries the text twice in one event, and
#: Synapse refuses events over 64 KiB of JSON)
MAX_CHARS = 32_000
#: a room id: ``!opaque:server.name``
ROOM_ID = re.compile(r"![^:\s/]+:[^\s/]+")


class MatrixSpec(ChannelSpec):
    """Matrix (client-server API): m.room.message events edited with m.replace."""

    name = "matrix"
    chat_id_pattern = ROOM_ID
    chat_id_expected = "a room id like !abc:server"
    max_units = MAX_CHARS
