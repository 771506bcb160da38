"""Slack as the producer sees it: conversation ids (channel, private channel, DM, user)."""

from __future__ import annotations

import re

from tokenrelay.specs.base import ChannelSpec

#: characters of one chat.update text after mrkdwn escaping (Slack answers msg_too_long above)
MAX_CHARS = 4000
#: a conversation id: channel (C), private group (G), DM (D) or a user (U/W, opens a DM)
CHAT_ID = re.compile(r"[CGDUW][A-Z0-9]{2,30}")


class SlackSpec(ChannelSpec):
    """Slack (Web API): chat.postMessage + chat.update; chat.startStream natively."""

    name = "slack"
    chat_id_pattern = CHAT_ID
    chat_id_expected = (
        "a conversation id such as C0123ABCD (C channel, G private channel, D direct message, "
        "U user)"
    )
    chat_id_upper = True
    max_units = MAX_CHARS
    unit = "characters of mrkdwn after escaping"
    native = "chat.startStream / appendStream / stopStream in DMs and threads"
