"""Channel registry: platform name -> its spec (producer side) and clients (worker side)."""

from __future__ import annotations

import threading

from tokenrelay.config import Settings
from workers.channels.base import ChannelClient, ChannelSpec
from workers.channels.console import ConsoleSpec
from workers.channels.discord import DiscordSpec
from workers.channels.feishu import FeishuSpec, LarkSpec
from workers.channels.matrix import MatrixSpec
from workers.channels.slack import SlackSpec
from workers.channels.telegram import TelegramSpec
from workers.channels.webhook import WebhookSpec

#: every platform tokenrelay can deliver to, by the name producers pass as ``channel=``
SPECS: dict[str, type] = {"telegram": TelegramSpec, "webhook": WebhookSpec}
SPECS.update(console=ConsoleSpec, matrix=MatrixSpec, feishu=FeishuSpec, lark=LarkSpec)
SPECS.update(slack=SlackSpec, discord=DiscordSpec)


class UnknownChannel(ValueError):
    """The producer named a channel tokenrelay has no client for."""


def get_spec(channel: str, settings: Settings) -> ChannelSpec:
    """The spec of ``channel``, or UnknownChannel listing the known ones."""
    cls = SPECS.get(channel) if isinstance(channel, str) else None
    if cls is None:
        raise UnknownChannel(f"unknown channel {channel!r}; known: {', '.join(sorted(SPECS))}")
    return cls(settings)


class ClientCache:
    """One client (one pooled HTTP session) per channel account in this process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[tuple[str, str], ChannelClient] = {}
        self._lock = threading.Lock()

    def get(self, channel: str, account: str) -> ChannelClient:
        key = (channel, account)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = get_spec(channel, self.settings).build(account)
                self._clients[key] = client
            return client
