"""The channel clients of the workers: one module per platform, each with a ``build(spec,
account)``; what a channel is (chat ids, capabilities) lives in ``tokenrelay.specs``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tokenrelay.config import Settings
from tokenrelay.specs import ChannelSpec, get_spec
from workers.channels import console, discord, feishu, matrix, slack, telegram, webhook
from workers.channels.base import ChannelClient

#: channel name -> the function that builds a client of one account from the channel's spec
BUILDERS: dict[str, Callable[[Any, str], ChannelClient]] = {
    "telegram": telegram.build,
    "slack": slack.build,
    "discord": discord.build,
    "feishu": feishu.build,
    "lark": feishu.build,
    "matrix": matrix.build,
    "webhook": webhook.build,
    "console": console.build,
}


def build_client(spec: ChannelSpec, account: str) -> ChannelClient:
    """A client of ``account`` on the channel ``spec`` describes."""
    return BUILDERS[spec.name](spec, account)


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
                client = build_client(get_spec(channel, self.settings), account)
                self._clients[key] = client
            return client
