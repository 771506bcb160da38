"""The channel specs: every channel tokenrelay delivers to, as the producer sees it (chat id
formats, edit intervals, capabilities and limits), without loading any client."""

from __future__ import annotations

from tokenrelay.config import Settings
from tokenrelay.specs.base import (
    FORMATS,
    ChannelSpec,
    Format,
    UnknownChannel,
    chat_id_text,
    pattern_chat_id,
    printable_chat_id,
)
from tokenrelay.specs.discord import DiscordSpec
from tokenrelay.specs.feishu import FeishuSpec, LarkSpec
from tokenrelay.specs.matrix import MatrixSpec
from tokenrelay.specs.slack import SlackSpec
from tokenrelay.specs.telegram import TelegramSpec
from tokenrelay.specs.webhook import ConsoleSpec, WebhookSpec

#: every channel, by the name producers pass as ``channel=``
SPECS: dict[str, type[ChannelSpec]] = {
    spec.name: spec
    for spec in (TelegramSpec, SlackSpec, DiscordSpec, FeishuSpec, LarkSpec, MatrixSpec,
                 WebhookSpec, ConsoleSpec)
}


def get_spec(channel: str, settings: Settings) -> ChannelSpec:
    """The spec of ``channel``, or UnknownChannel listing the known ones."""
    cls = SPECS.get(channel) if isinstance(channel, str) else None
    if cls is None:
        raise UnknownChannel(f"unknown channel {channel!r}; known: {', '.join(sorted(SPECS))}")
    return cls(settings)


__all__ = [
    "FORMATS",
    "SPECS",
    "ChannelSpec",
    "Format",
    "UnknownChannel",
    "chat_id_text",
    "get_spec",
    "pattern_chat_id",
    "printable_chat_id",
]
