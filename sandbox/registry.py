"""Every loopback platform emulator, by the channel name producers use.

An emulator class here is a context manager (``with Emulator() as emu:`` serves on a free
127.0.0.1 port until exit) and offers the same small interface, so the demo, the chat page
and the tests can drive any platform alike:

- ``Emulator(**knobs)``: defaults that work for a demo (any well-formed credential accepted);
- ``tokenrelay_env() -> dict[str, str]``: the TOKENRELAY_* variables pointing workers at it
  (API base, credentials of the default account);
- ``texts(chat_id) -> list[str]`` and ``messages(chat_id)``: what the chat shows, in order;
- ``wait_for(predicate, timeout) -> bool``: re-checked on every change of the ledger;
- ``ledger() -> dict``: JSON view ``{"chats": {chat: [{"message_id", "text", "edits",
  "deleted"}]}, "calls": [{"method", "status", "count"}], "total_calls": n}``;
- ``configure(**knobs)``: fault and limit knobs at runtime (latency, error_rate, drop_rate,
  drop_after_rate and the platform's own limits).
"""

from __future__ import annotations

import importlib
from typing import Any

#: channel name -> "module:Class" of its emulator
EMULATORS: dict[str, str] = {
    "telegram": "sandbox.telegram:TelegramEmulator",
    "webhook": "sandbox.webhook:WebhookEmulator",
    "slack": "sandbox.slack:SlackEmulator",
    "discord": "sandbox.discord:DiscordEmulator",
    "matrix": "sandbox.matrix:MatrixEmulator",
    "feishu": "sandbox.feishu:FeishuEmulator",
    "lark": "sandbox.feishu:LarkEmulator",
}


def emulator_class(channel: str) -> Any:
    """The emulator class of ``channel``; KeyError listing the known ones."""
    try:
        module, _, name = EMULATORS[channel].partition(":")
    except KeyError:
        known = ", ".join(sorted(EMULATORS))
        raise KeyError(f"no sandbox for {channel!r}; known: {known}") from None
    return getattr(importlib.import_module(module), name)
